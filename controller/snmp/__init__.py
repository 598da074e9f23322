"""Agentless kit over SNMP: printers, PoE switches, PDUs and UPSes, discovered and polled with pysnmp 7.

Device knowledge is data (``profiles/*.yaml``, format in ``profiles.py``); nothing here names a
vendor. A new device family is one YAML file; a new kind of reading is a field in ``fields.py``
and ``readings.py``.

  client.py          the get/walk interface, neutral values, errors
  pysnmp_client.py   that interface over pysnmp's asyncio API (the only module importing pysnmp)
  memory.py          that interface over in-memory agents and snmpsim recordings, for tests
  credentials.py     v2c communities and v3 users by reference, which to try where, the one that worked
  profiles.py        loading and checking profiles; fields.py, the vocabulary they may use
  identify.py        which profile fits a device
  collect.py         what to read for a profile, and what the answers mean
  readings.py        the frozen results, and rules that span fields
  poller.py          credentials → identification → collection, bounded and concurrent
  metering.py        readings over time → metered energy (method "metered")
  mapping.py         which outlet or PoE port feeds which device
  display.py         a poll as text for the command line
"""
