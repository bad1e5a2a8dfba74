"""The SDK a messaging app embeds: a no-I/O engine, an encrypted local store, transports, and `Client`."""
