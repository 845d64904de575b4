"""National Public Service Portal (Cổng Dịch vụ công quốc gia) synchronisation: payloads (§9 of
domain.md), the API client, the sync ledger and catch-up, and a simulator of the portal."""
