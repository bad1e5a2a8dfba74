from vigil.cli.app import main

main()
