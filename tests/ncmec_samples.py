"""Reference CyberTipline documents shared by the document, stand-in and client tests."""

from __future__ import annotations

__all__ = ["SPEC_MINIMAL_REPORT"]

# ../shared/ncmec-cybertipline.md §7: the minimal valid Vigil report, element for element.
SPEC_MINIMAL_REPORT = """<?xml version="1.0" encoding="UTF-8"?>
<report>
  <incidentSummary>
    <incidentType>Online Enticement of Children for Sexual Acts</incidentType>
    <reportAnnotations><sextortion/><csamSolicitation/></reportAnnotations>
    <incidentDateTime>2026-11-29T21:14:03Z</incidentDateTime>
  </incidentSummary>
  <internetDetails>
    <chatImIncident><chatClient>Vigil</chatClient></chatImIncident>
  </internetDetails>
  <reporter>
    <reportingPerson><email>safety@vigil.example</email></reportingPerson>
    <companyTemplate>Vigil</companyTemplate>
    <legalURL>https://vigil.example/terms</legalURL>
  </reporter>
  <personOrUserReported>
    <espIdentifier>acct_7f3c</espIdentifier>
    <espService>Vigil</espService>
    <screenName>example_handle</screenName>
    <ipCaptureEvent><ipAddress>198.51.100.23</ipAddress><eventName>Login</eventName><dateTime>2026-11-29T20:58:10Z</dateTime></ipCaptureEvent>
  </personOrUserReported>
  <victim>
    <victimPerson><age>13</age></victimPerson>
    <espIdentifier>acct_19aa</espIdentifier>
  </victim>
</report>
"""
