TOOLS += tblload
tblload_LIBS = -lpq
tblload_EXTRA = $(BUILD)/obj/gen/schema_sql.o
