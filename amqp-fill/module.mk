TOOLS += amqp-fill
amqp_fill_LIBS = -lrabbitmq -ljson-c -lssl -lcrypto
