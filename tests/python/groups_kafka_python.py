"""Consumer group smoke check with kafka-python against a running Sluice broker.

Usage: python3 tests/python/groups_kafka_python.py [bootstrap]   (default 127.0.0.1:9092)
Subscribes a KafkaConsumer to a 6-partition topic, consumes, commits, then lists,
describes, fetches the offsets of and deletes the group through KafkaAdminClient.
"""
import time, sys
from kafka import KafkaProducer, KafkaConsumer, KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic
b=sys.argv[1] if len(sys.argv) > 1 else '127.0.0.1:9092'
topic='kp-%d' % int(time.time())
admin=KafkaAdminClient(bootstrap_servers=b)
try: admin.create_topics([NewTopic(topic,6,1)])
except Exception as e: print('create',e)
p=KafkaProducer(bootstrap_servers=b, enable_idempotence=False)
for i in range(60): p.send(topic, value=b'v%d'%i, partition=i%6)
p.flush()
t0=time.time()
c=KafkaConsumer(bootstrap_servers=b, group_id='kpg-%d' % int(time.time()), auto_offset_reset='earliest', enable_auto_commit=False, session_timeout_ms=6000)
c.subscribe([topic])
n=0
while n<60 and time.time()-t0<20:
    for tp,msgs in c.poll(500).items(): n+=len(msgs)
print('consumed',n,'assignment',sorted(tp.partition for tp in c.assignment()), 'in', time.time()-t0)
c.commit()
print('committed', {tp.partition: c.committed(tp) for tp in c.assignment()})
c.close()
print('list', admin.list_groups())
print('describe', admin.describe_groups([c.config['group_id']]))
offs=admin.list_group_offsets(c.config['group_id'])
print('offsets', offs)
assert n == 60 and sum(o.offset for o in offs[c.config['group_id']].values())==n, (offs, n)
print('delete', admin.delete_groups([c.config['group_id']]))
print('list after delete', admin.list_groups())
print('OK')
