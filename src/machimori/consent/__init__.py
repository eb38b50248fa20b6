"""Consent: purposes, and per resident × service × purpose records after ISO/IEC TS 27560."""
