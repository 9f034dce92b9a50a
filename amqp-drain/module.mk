TOOLS += amqp-drain
amqp_drain_LIBS = -lrabbitmq -lssl -lcrypto
