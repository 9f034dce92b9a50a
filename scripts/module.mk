SCRIPTS += scripts/tableinator
