TOOLS += amqp-drain
amqp_drain_LIBS = -lrabbitmq -ljson-c -lssl -lcrypto
