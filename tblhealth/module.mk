TOOLS += tblhealth
tblhealth_LIBS = -lmicrohttpd -ljson-c -lpthread -lm
