TOOLS += tblxml
tblxml_LIBS = -lexpat -lz -ljson-c -lcrypto
