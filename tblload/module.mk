TOOLS += tblload
tblload_LIBS = -lpq -pthread
tblload_EXTRA = $(BUILD)/obj/gen/schema_sql.o
