"""Adapters to eHealth and MyCareNet: signers, WS-Security, the STS, endpoints, transport."""
