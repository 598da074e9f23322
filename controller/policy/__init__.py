"""Power policies: school calendars, the pure decision engine, and the per-device schedules compiled from them."""
