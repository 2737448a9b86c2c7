"""What clients conclude from ApiVersions: kafka-python 3.0 infers the broker's Kafka version
from the highest versions advertised (its table in kafka/protocol/broker_version_data.py:
Produce v13 means 4.1), and picks its request versions from that."""

from kafka import KafkaConsumer, KafkaProducer


def test_kafka_python_infers_kafka_4_1(broker):
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        assert consumer.config["api_version"] == (4, 1)
    finally:
        consumer.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        assert producer.config["api_version"] == (4, 1)
    finally:
        producer.close()
