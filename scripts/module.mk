SCRIPTS += scripts/tableinator
SCRIPTS += scripts/load-dump
