"""Energy accounting: from reported intervals to hourly buckets, and (later) kWh, pounds and kgCO2e."""
