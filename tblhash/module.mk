TOOLS += tblhash
tblhash_LIBS = -ljson-c -lcrypto
