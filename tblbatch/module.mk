TOOLS += tblbatch
