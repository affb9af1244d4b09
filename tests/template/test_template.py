"""What matters about the deployed stack, checked on the SAM transform's output for both
network modes (issue 9 §6). conftest.py expands the template offline."""

import json
import re

import pytest

from conftest import ACCOUNT, JOIN, REGION, ROOT, Stack, raw_template, render

ENI_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}
NETWORK_TYPES = {
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::RouteTable",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::EC2::VPCEndpoint",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::ElastiCache::SubnetGroup",
}
GETATT = lambda name, attr: {"Fn::GetAtt": [name, attr]}  # noqa: E731
TABLE = GETATT("UsersTable", "Arn")
# Every route the function answers (docs/contract.md), with its methods: the API sends exactly
# these to the alias (issue 19 added logout, log out everywhere, password change and reset).
ROUTE_METHODS = {
    "/api/v1.0/users": {"post"},
    "/api/v1.0/sessions": {"post", "delete"},
    "/api/v1.0/session": {"delete"},
    "/api/v1.0/users/password": {"put"},
    "/api/v1.0/password_resets": {"post"},
}
ROUTES = set(ROUTE_METHODS)
# What the function calls on the users table (src/stores/users.rs), and nothing else.
DYNAMODB_CALLS = {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"}


def as_list(x):
    return x if isinstance(x, list) else [x]


def role_statements(stack):
    """Every statement that applies to the function's execution role, whatever attaches it."""
    fn = stack.function()
    assert fn["Role"] == GETATT("FunctionRole", "Arn")
    role = stack.resources["FunctionRole"]["Properties"]
    assert not role.get("ManagedPolicyArns"), "no managed policy: everything it may do is listed here"
    statements = [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for _, pol in stack.of_type(kind).items():
            props = pol["Properties"]
            if {"Ref": "FunctionRole"} in props.get("Roles", []):
                statements += props["PolicyDocument"]["Statement"]
    return statements


USERS_RS = ROOT / "src/stores/users.rs"


def attribute_names(expression, names):
    """The top-level attribute names an update or condition expression touches: its words that
    are neither placeholders (:v), keywords nor functions, with #aliases resolved."""
    words = re.findall(r"[#:]?[A-Za-z_][A-Za-z0-9_]*", expression)
    keywords = {"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "IN", "BETWEEN",
                "attribute_exists", "attribute_not_exists", "attribute_type", "begins_with",
                "contains", "size", "if_not_exists", "list_append"}
    return {names.get(w, w) for w in words if not w.startswith(":") and w not in keywords}


def update_calls(operator=False):
    """Each UpdateItem of the adapter (src/stores/users.rs): (update expressions, condition
    expressions, the #aliases it names, ReturnValues or NONE). A call is the text from one
    `.update_item()` to the next `.send()`; a condition built with format! has its {parts}
    resolved from the `let part = ...;` literals of the file. The operator's calls are those of
    `set_disabled` (ihome-account), the function's all the others."""
    users = USERS_RS.read_text()
    at = users.index("fn set_disabled")
    end = users.index("\n}\n", at)
    source = users[at:end] if operator else users[:at] + users[end:]
    calls = []
    for chunk in re.findall(r"\.update_item\(\)(.*?)\.send\(\)", source, re.S):
        names = dict(re.findall(r'\.expression_attribute_names\(\s*"(#\w+)",\s*"(\w+)"', chunk))
        update = re.findall(r'\.update_expression\(\s*"([^"]+)"', chunk)
        condition = re.findall(r'\.condition_expression\(\s*(?:format!\(\s*)?"([^"]+)"', chunk)
        for part in re.findall(r"\{(\w+)\}", " ".join(condition)):
            # `let part = ...;` or `let (part, other) = ...;`: its expression-like literals
            (let,) = re.findall(rf"let \(?[\w, ]*\b{part}\b[\w, ]*\)? = (.*?);", users, re.S)
            condition += [x for x in re.findall(r'"([^"]+)"', let) if re.search(r"[ (=]", x)]
        returns = re.findall(r"ReturnValue::(\w+)", chunk)
        assert update, f"an UpdateItem whose update expression is not a literal: {chunk}"
        calls.append((" ".join(update), re.sub(r"\{\w+\}", "", " ".join(condition)), names,
                      returns[0] if returns else "None"))
    return calls


RETURN_VALUES = {"None": "NONE", "UpdatedNew": "UPDATED_NEW", "UpdatedOld": "UPDATED_OLD",
                 "AllNew": "ALL_NEW", "AllOld": "ALL_OLD"}


def test_role_allows_the_three_table_calls_logs_eni_and_own_key_only(stack):
    grants = set()
    for st in role_statements(stack):
        assert st["Effect"] == "Allow"
        assert "NotAction" not in st and "NotResource" not in st
        for action in as_list(st["Action"]):
            for resource in as_list(st["Resource"]):
                grants.add((action, json.dumps(resource, sort_keys=True)))
    # The login added GetItem and UpdateItem on the table, nothing else (their conditions below).
    expected = {
        ("dynamodb:PutItem", json.dumps(TABLE)),
        ("dynamodb:GetItem", json.dumps(TABLE)),
        ("dynamodb:UpdateItem", json.dumps(TABLE)),
        ("logs:CreateLogStream", json.dumps(GETATT("FunctionLogGroup", "Arn"))),
        ("logs:PutLogEvents", json.dumps(GETATT("FunctionLogGroup", "Arn"))),
        ("kms:Decrypt", json.dumps(GETATT("EnvironmentKey", "Arn"))),
    } | {(a, json.dumps("*")) for a in ENI_ACTIONS}
    assert grants == expected


def table_statement(stack, action):
    (st,) = [st for st in role_statements(stack) if action in as_list(st["Action"])]
    assert as_list(st["Action"]) == [action], "one action a statement, each with its own condition"
    assert st["Resource"] == TABLE
    return st


def test_registration_puts_whole_items_unconditioned(stack):
    # A registration writes a new item whole; its condition (attribute_not_exists) is the
    # request's, not the role's.
    assert "Condition" not in table_statement(stack, "dynamodb:PutItem")


def test_reads_only_the_projected_credentials_and_session_state(stack):
    """GetItem only of the key and the five attributes a login, a password change or a reset
    projects (the credentials, the session version, the operator's disabled flag), and only with
    a projection: without one, Select is ALL_ATTRIBUTES and the request is refused."""
    st = table_statement(stack, "dynamodb:GetItem")
    assert st["Condition"] == {
        "ForAllValues:StringEquals": {
            "dynamodb:Attributes": ["mobile", "user_id", "name", "password_hash",
                                    "session_version", "disabled"]},
        "StringEquals": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
    }
    # what the adapter asks for, read from its source: its projections together are exactly the
    # allowed attributes (less the key, which DynamoDB always needs listed)
    users = USERS_RS.read_text()
    projections = re.findall(r'\.projection_expression\(\s*"([^"]+)"', users)
    assert projections, "the adapter reads with a projection"
    names = dict(re.findall(r'\.expression_attribute_names\(\s*"(#\w+)",\s*"(\w+)"', users))
    projected = {names.get(a.strip(), a.strip()) for p in projections for a in p.split(",")}
    assert projected | {"mobile"} == set(st["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])


def test_writes_only_the_password_hash_and_session_version(stack):
    """UpdateItem may write password_hash (a login's upgrade, a change, a reset) and
    session_version (those two and log out everywhere), compare those and user_id, and read back
    only what it updated: never name, never disabled (the operator's alone)."""
    st = table_statement(stack, "dynamodb:UpdateItem")
    assert st["Condition"] == {
        "ForAllValues:StringEquals": {
            "dynamodb:Attributes": ["mobile", "user_id", "password_hash", "session_version"]},
        "StringEquals": {"dynamodb:ReturnValues": ["NONE", "UPDATED_NEW"]},
    }
    allowed = set(st["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    # what the adapter writes and compares, read from its source
    users = USERS_RS.read_text()
    assert '.update_expression("SET password_hash = :new")' in users  # a login's upgrade
    assert '.condition_expression("password_hash = :old")' in users
    calls = update_calls()
    assert len(calls) >= 3, "the upgrade, the password replacement, the end of every session"
    written, touched, returned = set(), set(), set()
    for update, condition, names, returns in calls:
        written |= attribute_names(update, names)
        touched |= attribute_names(update, names) | attribute_names(condition, names)
        returned.add(RETURN_VALUES[returns])
    assert written == {"password_hash", "session_version"}, written
    assert touched | {"mobile"} == allowed, touched
    # UPDATED_NEW hands back only what the request wrote; nothing asks for the whole item
    assert returned | {"NONE"} == set(st["Condition"]["StringEquals"]["dynamodb:ReturnValues"])


def test_the_operator_policy_writes_disabled_and_session_version_only(stack):
    """ihome-account's policy: a managed policy attached to no one by the stack, reading and
    writing only the key, user_id, session_version and disabled, and the cache's token when
    there is one; the function's role never gets it."""
    pol = stack.resources["AccountOperatorPolicy"]["Properties"]
    assert "Roles" not in pol and "Users" not in pol and "Groups" not in pol
    statements = {st["Sid"]: st for st in pol["PolicyDocument"]["Statement"]}
    attrs = ["mobile", "user_id", "session_version", "disabled"]
    get = statements.pop("ReadUserIdAndSessionStateOnly")
    assert (get["Action"], get["Resource"]) == ("dynamodb:GetItem", TABLE)
    assert get["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:Attributes": attrs},
                                "StringEquals": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}}
    update = statements.pop("WriteDisabledAndSessionVersionOnly")
    assert (update["Action"], update["Resource"]) == ("dynamodb:UpdateItem", TABLE)
    assert update["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:Attributes": attrs},
                                   "StringEquals": {"dynamodb:ReturnValues": ["NONE", "UPDATED_NEW"]}}
    secret = statements.pop("ReadTheCacheAuthToken")
    assert secret["Action"] == "secretsmanager:GetSecretValue"
    want = ({"Ref": "CacheAuthSecret"} if stack.values["NetworkMode"] == "create"
            else {"Fn::Sub": "${RedisAuthSecretArn}"})
    assert secret["Resource"] == want
    assert statements == {}
    # what ihome-account asks for (DynamoUsers::set_disabled), read from its source: it writes
    # disabled and session_version only, touches nothing outside the list, and reads back
    # nothing but what it wrote (ALL_NEW would hand over the password hash and the name)
    written, touched, returned = set(), set(), set()
    for expression, condition, names, returns in update_calls(operator=True):
        written |= attribute_names(expression, names)
        touched |= attribute_names(expression, names) | attribute_names(condition, names)
        returned.add(RETURN_VALUES[returns])
    assert written == {"disabled", "session_version"}, written
    assert touched | {"mobile"} <= set(attrs), touched
    assert returned <= set(update["Condition"]["StringEquals"]["dynamodb:ReturnValues"]), returned
    # and the function's role may read disabled, never write it
    assert "disabled" not in json.dumps(table_statement(stack, "dynamodb:UpdateItem"))


def test_the_operator_policy_has_no_secret_statement_without_a_cache_token():
    stack = Stack({**JOIN, "RedisAuthSecretArn": ""})
    sids = {st["Sid"] for st in
            stack.resources["AccountOperatorPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    assert sids == {"ReadUserIdAndSessionStateOnly", "WriteDisabledAndSessionVersionOnly"}


def test_role_is_assumed_by_lambda_only(stack):
    doc = stack.resources["FunctionRole"]["Properties"]["AssumeRolePolicyDocument"]
    (st,) = doc["Statement"]
    assert st["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert st["Action"] == "sts:AssumeRole"


def test_environment_encrypted_with_a_key_only_the_role_decrypts(stack):
    fn = stack.function()
    assert fn["KmsKeyArn"] == GETATT("EnvironmentKey", "Arn")
    key = stack.resources["EnvironmentKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    use = {"kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
           "kms:CreateGrant", "kms:Encrypt"}
    for st in key["KeyPolicy"]["Statement"]:
        assert st["Effect"] == "Allow"
        actions = set(as_list(st["Action"]))
        assert not any("*" in a for a in actions), st["Sid"]
        if "kms:Decrypt" in actions:
            assert st["Principal"] == {"AWS": GETATT("FunctionRole", "Arn")}
            assert actions == {"kms:Decrypt"}
            continue
        assert st["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
        if actions & use:
            # the account may only have Lambda encrypt and grant, never use the key itself
            assert actions & use <= {"kms:Encrypt", "kms:CreateGrant"}, st["Sid"]
            via = st["Condition"]["StringEquals"]["kms:ViaService"]
            assert via == {"Fn::Sub": "lambda.${AWS::Region}.amazonaws.com"}
            if "kms:CreateGrant" in actions:
                assert st["Condition"]["Bool"]["kms:GrantIsForAWSResource"] is True


def test_api_routes_every_route_to_the_live_alias(stack):
    alias_name, alias = stack.one("AWS::Lambda::Alias")
    assert alias["Properties"]["Name"] == "live"
    body = stack.resources["HttpApi"]["Properties"]["Body"]
    assert set(body["paths"]) == ROUTES
    for path, methods in ROUTE_METHODS.items():
        assert set(body["paths"][path]) == methods, path
        for method in methods:
            integration = body["paths"][path][method]["x-amazon-apigateway-integration"]
            assert integration["uri"]["Fn::Sub"].endswith("/functions/${RegisterFunctionAliaslive}/invocations")
            assert "${RegisterFunction.Arn}" not in json.dumps(integration["uri"])
    # API Gateway may invoke the alias for each route, and for nothing else
    permissions = stack.of_type("AWS::Lambda::Permission").values()
    routes = {(m.upper(), p) for p, methods in ROUTE_METHODS.items() for m in methods}
    assert len(permissions) == len(routes)
    sources = set()
    for permission in permissions:
        assert permission["Properties"]["FunctionName"] == {"Ref": alias_name}
        assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
        sources.add(render(permission["Properties"]["SourceArn"], {"AWS::Partition": "aws",
                                                                   "AWS::Region": REGION,
                                                                   "AWS::AccountId": ACCOUNT}))
    api = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:<HttpApi>/*"
    assert sources == {f"{api}/{method}{path}" for method, path in routes}


def strings(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from strings(v, f"{path}/{i}")
    elif isinstance(node, str):
        yield path, node


DYNAMIC = re.compile(r"\{\{resolve:secretsmanager:\$\{[A-Za-z]+\}:SecretString\}\}")


def test_no_secret_in_clear(stack):
    env = stack.function()["Environment"]["Variables"]
    values = {**stack.values, "AWS::Region": REGION}
    jwt = render(env["JWT_SECRET"], values)
    assert re.fullmatch(r"\{\{resolve:secretsmanager:<JwtSecret>:SecretString\}\}", jwt)
    # no secret's value is in the template: generated by Secrets Manager, never a SecretString
    for name, secret in stack.of_type("AWS::SecretsManager::Secret").items():
        assert "SecretString" not in secret["Properties"], name
        gen = secret["Properties"]["GenerateSecretString"]
        assert 16 <= gen["PasswordLength"] <= 128 and gen["ExcludePunctuation"] is True
    # anything that names a token, password or secret is a dynamic reference or a resource
    for path, text in strings(stack.cfn):
        if re.search(r"(AuthToken|Password|JWT_SECRET)$", path):
            assert DYNAMIC.fullmatch(text), path
        assert not re.search(r"rediss?://:[^{<]", text), path  # credentials only as references
    for name, spec in raw_template()["Parameters"].items():
        assert not re.search(r"(?i)token|password|secret$", name), f"{name}: secrets are not parameters"


def test_create_mode_builds_network_cache_with_auth_and_issuer_access(create):
    types = {r["Type"] for r in create.resources.values()}
    assert NETWORK_TYPES <= types
    cache = create.resources["Cache"]["Properties"]
    assert cache["TransitEncryptionEnabled"] is True and cache["AtRestEncryptionEnabled"] is True
    assert cache["AuthToken"] == {"Fn::Sub": "{{resolve:secretsmanager:${CacheAuthSecret}:SecretString}}"}
    env = create.function()["Environment"]["Variables"]
    assert render(env["REDIS_URL"], create.values) == (
        "rediss://:{{resolve:secretsmanager:<CacheAuthSecret>:SecretString}}"
        "@<Cache.PrimaryEndPoint.Address>:<Cache.PrimaryEndPoint.Port>")
    ingress = {json.dumps(r["Properties"]["SourceSecurityGroupId"])
               for r in create.of_type("AWS::EC2::SecurityGroupIngress").values()
               if r["Properties"]["GroupId"] == GETATT("CacheSecurityGroup", "GroupId")}
    assert ingress == {json.dumps(GETATT("FunctionSecurityGroup", "GroupId")),
                       json.dumps(GETATT("CacheClientSecurityGroup", "GroupId"))}
    outputs = create.cfn["Outputs"]
    for name in ("CacheClientSecurityGroupId", "CacheEndpoint", "CacheAuthSecretArn"):
        assert outputs[name]["Condition"] == "IsCreate"


def test_join_mode_creates_nothing_network_or_cache(join):
    created = {n: r["Type"] for n, r in join.resources.items()
               if r["Type"] in NETWORK_TYPES or "Cache" in n}
    assert created == {}
    vpc = join.function()["VpcConfig"]
    values = join.values
    assert render(vpc["SubnetIds"], values) == JOIN["SubnetIds"].split(",")
    assert render(vpc["SecurityGroupIds"], values) == JOIN["SecurityGroupIds"].split(",")
    url = render(join.function()["Environment"]["Variables"]["REDIS_URL"], values)
    assert url == ("rediss://:{{resolve:secretsmanager:" + JOIN["RedisAuthSecretArn"]
                   + ":SecretString}}@master.ihome-codes.abc123.apse1.cache.amazonaws.com:6379")


def test_join_without_auth_secret_uses_the_url_as_given():
    stack = Stack({**JOIN, "RedisAuthSecretArn": ""})
    url = stack.function()["Environment"]["Variables"]["REDIS_URL"]
    assert url == JOIN["RedisUrl"]


def test_join_with_route_tables_adds_only_the_dynamodb_endpoint(join):
    stack = Stack({**JOIN, "VpcId": "vpc-0a1b2c3d4e5f60718",
                   "RouteTableIds": "rtb-0a1b2c3d4e5f60718,rtb-0a1b2c3d4e5f60719"})
    added = set(stack.resources) - set(join.resources)
    assert added == {"DynamoDbEndpoint"}
    ep = stack.resources["DynamoDbEndpoint"]["Properties"]
    assert ep["VpcEndpointType"] == "Gateway"
    assert ep["RouteTableIds"] == ["rtb-0a1b2c3d4e5f60718", "rtb-0a1b2c3d4e5f60719"]
    assert_endpoint_allows_the_function_calls_only(ep)


def assert_endpoint_allows_the_function_calls_only(ep):
    (st,) = ep["PolicyDocument"]["Statement"]
    assert st["Effect"] == "Allow" and "NotAction" not in st
    assert set(as_list(st["Action"])) == DYNAMODB_CALLS
    assert st["Resource"] == TABLE


def test_create_mode_endpoint_allows_the_function_calls_only(create):
    assert_endpoint_allows_the_function_calls_only(create.resources["DynamoDbEndpoint"]["Properties"])


def cors(stack):
    return stack.resources["HttpApi"]["Properties"]["Body"].get("x-amazon-apigateway-cors")


def test_no_cors_without_allowed_origins(stack):
    assert cors(stack) is None
    assert stack.function()["Environment"]["Variables"]["ALLOWED_ORIGINS"] == ""


def test_cors_is_exactly_the_allowed_origins_with_credentials():
    origins = "https://www.ihome.example,https://ihome.example:8443"
    stack = Stack({"AllowedOrigins": origins})
    conf = cors(stack)
    values = stack.values
    assert render(conf["allowOrigins"], values) == origins.split(",")
    assert conf == {"allowOrigins": conf["allowOrigins"], "allowCredentials": True,
                    "allowMethods": ["POST", "PUT", "DELETE"],
                    "allowHeaders": ["content-type", "x-csrftoken"]}
    # API-wide: every route is covered as the registration is, and no route has its own
    body = stack.resources["HttpApi"]["Properties"]["Body"]
    assert set(body["paths"]) == ROUTES
    assert "x-amazon-apigateway-cors" not in json.dumps(body["paths"])
    assert stack.function()["Environment"]["Variables"]["ALLOWED_ORIGINS"] == origins


def test_alarms_are_the_rollback_triggers(stack):
    alarms = set(stack.of_type("AWS::CloudWatch::Alarm"))
    _, group = stack.one("AWS::CodeDeploy::DeploymentGroup")
    config = group["Properties"]["AlarmConfiguration"]
    assert config["Enabled"] is True
    assert {a["Name"]["Ref"] for a in config["Alarms"]} == alarms
    rollback = group["Properties"]["AutoRollbackConfiguration"]
    assert rollback["Enabled"] is True
    assert "DEPLOYMENT_STOP_ON_ALARM" in rollback["Events"]
    assert render(group["Properties"]["DeploymentConfigName"], stack.values) == \
        "CodeDeployDefault.LambdaCanary10Percent5Minutes"
    # what the alarms watch: the outcomes outside the user's control and the platform's
    watched = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"],
                json.dumps(a["Properties"].get("Dimensions", [{}])[0].get("Value")))
               for a in stack.of_type("AWS::CloudWatch::Alarm").values()}
    for outcome in ("internal", "sms_store_unavailable", "throttle_store_unavailable",
                    "user_store_unavailable", "session_store_unavailable"):
        assert ("IHome/Registration", "Requests", json.dumps(outcome)) in watched
    names = {(ns, m) for ns, m, _ in watched}
    assert {("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"), ("AWS/Lambda", "Duration"),
            ("AWS/ApiGateway", "5xx")} <= names
    for alarm in stack.of_type("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_all_at_once_is_allowed():
    stack = Stack({"DeploymentType": "AllAtOnce"})
    _, group = stack.one("AWS::CodeDeploy::DeploymentGroup")
    assert render(group["Properties"]["DeploymentConfigName"], stack.values) == \
        "CodeDeployDefault.LambdaAllAtOnce"


def test_provisioned_concurrency_only_when_asked(create):
    _, alias = create.one("AWS::Lambda::Alias")
    assert "ProvisionedConcurrencyConfig" not in alias["Properties"]
    stack = Stack({"ProvisionedConcurrency": "2"})
    _, alias = stack.one("AWS::Lambda::Alias")
    assert alias["Properties"]["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": "2"}
    assert create.function()["ReservedConcurrentExecutions"] == "20"


def test_every_parameter_the_environment_reads_publishes_a_version(create):
    """SAM hashes the function before parameters are resolved, so the version's description must
    name each parameter the environment reads, or a parameter-only change would never reach the
    alias."""
    raw = raw_template()["Resources"]["RegisterFunction"]["Properties"]
    used = set(re.findall(r'"Ref": "([A-Za-z]+)"', json.dumps(raw["Environment"])))
    used |= set(re.findall(r"\$\{([A-Za-z]+)\}", json.dumps(raw["Environment"])))
    params = set(raw_template()["Parameters"])
    described = json.dumps(raw["VersionDescription"])
    for name in (used & params) - {"RedisAuthSecretArn"}:  # a secret change: bump Revision
        assert name in described, name
    _, version = create.one("AWS::Lambda::Version")
    for overrides in ({"StatusCodes": "http"}, {"Revision": "2"}, {"AllowedOrigins": "https://a.example"},
                      {"MemorySize": "1024"}):
        _, other = Stack(overrides).one("AWS::Lambda::Version")
        assert render(other["Properties"]["Description"], {**create.values, **overrides}) != \
            render(version["Properties"]["Description"], create.values), overrides


def test_memory_size_is_the_parameter_and_its_default_is_power_tunes_choice(create):
    """The default is what scripts/power-tune chose (docs/performance.md, README's deploy section)."""
    params = raw_template()["Parameters"]
    assert params["MemorySize"]["Default"] == 512
    assert str(create.function()["MemorySize"]) == "512"
    assert str(Stack({"MemorySize": "1024"}).function()["MemorySize"]) == "1024"


def test_version_description_fits_lambdas_limit():
    params = raw_template()["Parameters"]
    longest = {n: "x" * int(p["MaxLength"]) if "MaxLength" in p else
               max((str(v) for v in p.get("AllowedValues", [p.get("Default", "")])), key=len)
               for n, p in params.items()}
    longest["SessionTtlSeconds"] = str(params["SessionTtlSeconds"]["MaxValue"])
    longest["MemorySize"] = str(params["MemorySize"]["MaxValue"])
    for mode in ("create", "join"):
        stack = Stack({**(JOIN if mode == "join" else {}), **{k: longest[k] for k in
                       ("Revision", "StatusCodes", "JwtIssuer", "AllowedOrigins", "MemorySize")},
                       **({"RedisUrl": longest["RedisUrl"]} if mode == "join" else {})})
        _, version = stack.one("AWS::Lambda::Version")
        text = render(version["Properties"]["Description"], stack.values)
        assert len(text) <= 256, (mode, len(text))


def test_access_logs_are_json_without_cookies_or_bodies(stack):
    _, stage = stack.one("AWS::ApiGatewayV2::Stage")
    settings = stage["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == GETATT("ApiAccessLogGroup", "Arn")
    line = json.loads(settings["Format"])
    assert {"requestId", "sourceIp", "routeKey", "status", "responseLatency",
            "integrationLatency", "integrationErrorMessage"} <= set(line)
    assert not re.search(r"(?i)cookie|header|body|\$input|authorizer", settings["Format"])
    for group in stack.of_type("AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == "30"


def test_the_function_reads_exactly_these_variables(stack):
    env = stack.function()["Environment"]["Variables"]
    assert set(env) == {"USERS_TABLE", "REDIS_URL", "JWT_SECRET", "SESSION_TTL_SECONDS",
                        "SMS_CODE_LEASE_MS", "JWT_ISSUER", "STATUS_CODES", "ALLOWED_ORIGINS",
                        "LOGIN_LIMIT_MOBILE_IP", "LOGIN_LIMIT_IP", "LOGIN_LIMIT_MOBILE",
                        "METRICS_NAMESPACE", "SESSION_WAIT_REPLICAS"}
    # kept, though logins count in it too: the alarms and dashboards read this name
    assert env["METRICS_NAMESPACE"] == "IHome/Registration"
    # the login limits as written out are the function's defaults (src/edge/config.rs)
    config = (ROOT / "src/edge/config.rs").read_text()
    defaults = dict(re.findall(r"/// \| `(LOGIN_LIMIT_\w+)` \| `([0-9/]+)` \|", config))
    assert defaults == {"LOGIN_LIMIT_MOBILE_IP": "5/600", "LOGIN_LIMIT_IP": "100/3600",
                        "LOGIN_LIMIT_MOBILE": "20/3600"}
    for name, value in defaults.items():
        assert env[name] == value, name
    assert env["STATUS_CODES"] == "ihome"
    # an ending waits for the one replica the template creates; a joined cache's are unknown
    groups = stack.of_type("AWS::ElastiCache::ReplicationGroup")
    replicas = [g["Properties"]["NumCacheClusters"] - 1 for g in groups.values()]
    assert env["SESSION_WAIT_REPLICAS"] == ("1" if replicas == [1] else "0"), replicas
    assert Stack({"StatusCodes": "http"}).function()["Environment"]["Variables"]["STATUS_CODES"] == "http"


def test_custom_domain_only_when_asked(create):
    assert not create.of_type("AWS::ApiGatewayV2::DomainName")
    cert = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0a1b2c3d-0000-4000-8000-0a1b2c3d4e5f"
    stack = Stack({"DomainName": "api.ihome.example", "CertificateArn": cert})
    _, domain = stack.one("AWS::ApiGatewayV2::DomainName")
    assert domain["Properties"]["DomainNameConfigurations"][0]["SecurityPolicy"] == "TLS_1_2"
    _, mapping = stack.one("AWS::ApiGatewayV2::ApiMapping")
    assert mapping["Properties"]["ApiId"] == {"Ref": "HttpApi"}
    assert mapping["Properties"]["Stage"] == {"Ref": "HttpApiApiGatewayDefaultStage"}
    assert "HttpApiApiGatewayDefaultStage" in stack.resources
    assert not stack.of_type("AWS::Route53::RecordSet")
    with_zone = Stack({"DomainName": "api.ihome.example", "CertificateArn": cert,
                       "HostedZoneId": "Z0123456789ABCDEFGHIJ"})
    _, record = with_zone.one("AWS::Route53::RecordSet")
    assert record["Properties"]["AliasTarget"]["DNSName"] == GETATT("ApiDomain", "RegionalDomainName")


def test_dashboard_is_valid_json_with_outcomes_and_latencies(create):
    _, dash = create.one("AWS::CloudWatch::Dashboard")
    body = render(dash["Properties"]["DashboardBody"], {**create.values, "AWS::Region": REGION,
                                                        "AWS::StackName": "ihome-register"})
    widgets = json.loads(body)["widgets"]
    text = json.dumps(widgets)
    for needle in ("Outcome", "HashTime", "RedisTime", "DynamoDbTime", "ColdStart", "Duration"):
        assert needle in text
    logins = [w for w in widgets if "Logins" in w["properties"].get("title", "")]
    assert len(logins) == 1
    shown = {m[3] for m in logins[0]["properties"]["metrics"]}
    assert shown == {"logged_in", "bad_credentials", "too_many_attempts", "throttle_store_unavailable"}
    (sessions,) = [w for w in widgets if "Sessions" in w["properties"].get("title", "")]
    shown = {m[3] for m in sessions["properties"]["metrics"]}
    assert shown == {"logged_out", "logged_out_everywhere", "password_changed", "password_reset",
                     "not_logged_in", "session_store_unavailable"}
    (alarms,) = [w for w in widgets if w["type"] == "alarm"]
    assert len(alarms["properties"]["alarms"]) == len(create.of_type("AWS::CloudWatch::Alarm"))
