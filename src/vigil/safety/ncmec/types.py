"""Shared CyberTipline types (spec §4.8): persons, contacts, email, phone, address, IP and device events."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from vigil.safety.ncmec._schema import Element, slot
from vigil.safety.ncmec.enums import AddressType, EmailType, EventName, PhoneType

__all__ = [
    "Address",
    "ContactPerson",
    "DeviceId",
    "Email",
    "EstimatedLocation",
    "IpCaptureEvent",
    "Person",
    "Phone",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Email(Element):
    address: str = field(metadata=slot("text", "str", text=True, required=True, max_length=255))
    type: EmailType | None = field(
        default=None, metadata=slot("type", "enum", attribute=True, enum=EmailType)
    )
    verified: bool | None = field(default=None, metadata=slot("verified", "bool", attribute=True))
    verification_date: datetime | None = field(
        default=None, metadata=slot("verificationDate", "datetime", attribute=True)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Phone(Element):
    number: str = field(metadata=slot("text", "str", text=True, required=True, max_length=50))
    type: PhoneType | None = field(
        default=None, metadata=slot("type", "enum", attribute=True, enum=PhoneType)
    )
    verified: bool | None = field(default=None, metadata=slot("verified", "bool", attribute=True))
    verification_date: datetime | None = field(
        default=None, metadata=slot("verificationDate", "datetime", attribute=True)
    )
    country_calling_code: str | None = field(
        default=None,
        metadata=slot("countryCallingCode", "str", attribute=True, pattern=re.compile(r"\+[0-9]{1,3}")),
    )
    extension: str | None = field(
        default=None, metadata=slot("extension", "str", attribute=True, pattern=re.compile(r"[0-9]{1,10}"))
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Address(Element):
    type: AddressType | None = field(
        default=None, metadata=slot("type", "enum", attribute=True, enum=AddressType)
    )
    address: str | None = field(default=None, metadata=slot("address", "str", max_length=255))
    city: str | None = field(default=None, metadata=slot("city", "str", max_length=100))
    zip_code: str | None = field(default=None, metadata=slot("zipCode", "str", max_length=20))
    state: str | None = field(default=None, metadata=slot("state", "str", max_length=100))
    non_usa_state: str | None = field(default=None, metadata=slot("nonUsaState", "str", max_length=100))
    country: str | None = field(default=None, metadata=slot("country", "str", max_length=100))


@dataclass(frozen=True, slots=True, kw_only=True)
class Person(Element):
    """The person type (`reportingPerson`, `personOrUserReportedPerson`, `victimPerson`, ...)."""

    first_name: str | None = field(default=None, metadata=slot("firstName", "str", max_length=100))
    last_name: str | None = field(default=None, metadata=slot("lastName", "str", max_length=100))
    phones: tuple[Phone, ...] = field(
        default=(), metadata=slot("phone", "element", repeated=True, element=Phone)
    )
    emails: tuple[Email, ...] = field(
        default=(), metadata=slot("email", "element", repeated=True, element=Email)
    )
    addresses: tuple[Address, ...] = field(
        default=(), metadata=slot("address", "element", repeated=True, element=Address)
    )
    age: int | None = field(default=None, metadata=slot("age", "int", minimum=0, maximum=150))
    age_assertion_discrepancy: bool | None = field(
        default=None, metadata=slot("ageAssertionDiscrepancy", "bool")
    )
    date_of_birth: date | None = field(default=None, metadata=slot("dateOfBirth", "date"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactPerson(Element):
    """The contact-person type (`contactPerson`, `officerContact`)."""

    first_name: str | None = field(default=None, metadata=slot("firstName", "str", max_length=100))
    last_name: str | None = field(default=None, metadata=slot("lastName", "str", max_length=100))
    phones: tuple[Phone, ...] = field(
        default=(), metadata=slot("phone", "element", repeated=True, element=Phone)
    )
    emails: tuple[Email, ...] = field(
        default=(), metadata=slot("email", "element", repeated=True, element=Email)
    )
    addresses: tuple[Address, ...] = field(
        default=(), metadata=slot("address", "element", repeated=True, element=Address)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class IpCaptureEvent(Element):
    ip_address: str = field(metadata=slot("ipAddress", "ip", required=True))
    event_name: EventName | None = field(default=None, metadata=slot("eventName", "enum", enum=EventName))
    date_time: datetime | None = field(default=None, metadata=slot("dateTime", "datetime"))
    possible_proxy: bool | None = field(default=None, metadata=slot("possibleProxy", "bool"))
    port: int | None = field(default=None, metadata=slot("port", "int", minimum=1, maximum=65535))


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceId(Element):
    id_type: str = field(metadata=slot("idType", "str", required=True, max_length=255))
    id_value: str = field(metadata=slot("idValue", "str", required=True, max_length=2083))
    event_name: EventName | None = field(default=None, metadata=slot("eventName", "enum", enum=EventName))
    date_time: datetime | None = field(default=None, metadata=slot("dateTime", "datetime"))


@dataclass(frozen=True, slots=True, kw_only=True)
class EstimatedLocation(Element):
    verified: bool | None = field(default=None, metadata=slot("verified", "bool", attribute=True))
    timestamp: datetime | None = field(default=None, metadata=slot("timestamp", "datetime", attribute=True))
    city: str | None = field(default=None, metadata=slot("city", "str", max_length=100))
    region: str | None = field(default=None, metadata=slot("region", "str", max_length=100))
    country_code: str | None = field(
        default=None, metadata=slot("countryCode", "str", pattern=re.compile(r"[A-Z]{2}"))
    )
