"""Energy accounting: from reported intervals to kWh, pounds and kgCO2e a bursar can defend.

hourly.py spreads reports over UTC hours (ingest writes the buckets); lines.py turns buckets into the
device-hours accounting trusts (metered wins, RAPL corrected, silence attributed); accounting.py sums
them with tariffs (tariff.py) and carbon factors (carbon.py); savings.py works out what policy saved;
catalogue.py holds the watts by state; intensity.py the grid's half-hourly carbon forecast.
"""
