"""The reference's limits, in one place."""

QUANTITY_MIN, QUANTITY_MAX, QUANTITY_DEFAULT = 1, 100, 1
HWID_SLOTS_MIN, HWID_SLOTS_MAX, HWID_SLOTS_DEFAULT = 1, 16, 1
LABEL_MAX_CHARS = 128
PAGE_MIN, PAGE_MAX, PAGE_DEFAULT = 1, 200, 50
IDEMPOTENCY_HOURS = 24

# Devices an unlimited-seat key records (the first ones; later ones are valid but not recorded). Every
# recorded device is read on each validation of the key and carried in each of its events: a shared
# key on thousands of machines would make every validation read thousands of rows, and its events
# outgrow NATS's 1 MB message limit (rejected for good, holding back the license's later events).
UNLIMITED_RECORDED_DEVICES = 100
