"""Create the users table (partition key `mobile`, on-demand) on the DynamoDB endpoint in
AWS_ENDPOINT_URL_DYNAMODB, as template.yaml declares it. Idempotent. Usage: create-table.py NAME"""
import sys

import boto3

name = sys.argv[1]
ddb = boto3.client("dynamodb")
if name in ddb.list_tables()["TableNames"]:
    print(f"table {name} exists")
else:
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "mobile", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "mobile", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=name)
    print(f"table {name} created")
