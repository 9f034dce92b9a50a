TOOLS += tblxml
tblxml_LIBS = -lexpat -lz -lcrypto
