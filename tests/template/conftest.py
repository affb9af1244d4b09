"""Expands template.yaml offline, as `sam validate` and CloudFormation do, then resolves what
CloudFormation would for one set of parameter values: conditions, Fn::If, AWS::NoValue and Refs
to parameters. Nothing here talks to AWS."""

import copy
import os
from pathlib import Path

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION = "ap-southeast-1"
ACCOUNT = "123456789012"

# join-mode values a deployer would give (all fake)
JOIN = {
    "NetworkMode": "join",
    "SubnetIds": "subnet-0a1b2c3d4e5f60718,subnet-0a1b2c3d4e5f60719",
    "SecurityGroupIds": "sg-0a1b2c3d4e5f60718",
    "RedisUrl": "rediss://master.ihome-codes.abc123.apse1.cache.amazonaws.com:6379",
    "RedisAuthSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ihome-cache-auth-AbCdEf",
}


class NoManagedPolicies:
    """The template names no managed policy by name, so SAM never needs IAM's list."""

    def load(self):
        return {}


def raw_template():
    return yaml_parse(TEMPLATE.read_text())


def parameter_values(template, overrides):
    values = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    values.update(overrides)
    for name, spec in template["Parameters"].items():
        value = values[name]
        if spec["Type"] == "CommaDelimitedList" and isinstance(value, str):
            values[name] = [] if value == "" else value.split(",")
        elif spec["Type"] == "Number":
            values[name] = str(value)
    return values


class Resolver:
    """CloudFormation's evaluation of conditions and the few intrinsics that decide shape."""

    def __init__(self, template, values):
        self.values = values
        self.conditions_src = template.get("Conditions", {})
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = self.truth(self.conditions_src[name])
        return self.conditions[name]

    def truth(self, node):
        (fn, arg), = node.items()
        if fn == "Fn::Equals":
            a, b = (self.value(x) for x in arg)
            return a == b
        if fn == "Fn::Not":
            return not self.truth(arg[0])
        if fn == "Fn::And":
            return all(self.truth(x) for x in arg)
        if fn == "Fn::Or":
            return any(self.truth(x) for x in arg)
        if fn == "Condition":
            return self.condition(arg)
        raise ValueError(node)

    def value(self, node):
        """A condition operand: a literal, a parameter Ref, or a Join of them."""
        if isinstance(node, dict):
            if "Ref" in node:
                return self.values[node["Ref"]]
            if "Fn::Join" in node:
                sep, parts = node["Fn::Join"]
                parts = self.value(parts)
                return sep.join(parts if isinstance(parts, list) else [parts])
            if "Condition" in node or len(node) == 1 and next(iter(node)) in (
                "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
                return self.truth(node)
        if isinstance(node, list):
            return [self.value(x) for x in node]
        return node

    NOVALUE = object()

    def resolve(self, node):
        """Fn::If and AWS::NoValue gone, Refs to parameters replaced; other intrinsics kept."""
        if isinstance(node, dict):
            if len(node) == 1 and "Fn::If" in node:
                name, yes, no = node["Fn::If"]
                return self.resolve(yes if self.condition(name) else no)
            if len(node) == 1 and "Ref" in node:
                ref = node["Ref"]
                if ref == "AWS::NoValue":
                    return self.NOVALUE
                if ref in self.values:
                    return self.values[ref]
                return node
            out = {}
            for k, v in node.items():
                r = self.resolve(v)
                if r is not self.NOVALUE:
                    out[k] = r
            return out
        if isinstance(node, list):
            return [r for r in (self.resolve(x) for x in node) if r is not self.NOVALUE]
        return node


class Stack:
    """The resources CloudFormation would create for one set of parameter values."""

    def __init__(self, overrides=None):
        os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
        template = raw_template()
        # what `sam package` does to a local CodeUri before CloudFormation sees the template
        for res in template["Resources"].values():
            if res["Type"] == "AWS::Serverless::Function":
                res["Properties"]["CodeUri"] = "s3://artifacts/ihome-register.zip"
        self.values = parameter_values(template, overrides or {})
        sam_values = {k: (",".join(v) if isinstance(v, list) else v) for k, v in self.values.items()}
        sam_values.update({"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"})
        self.cfn = transform(copy.deepcopy(template), sam_values, NoManagedPolicies())
        self.resolver = Resolver(self.cfn, {**self.values, "AWS::Region": REGION,
                                            "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"})
        self.resources = {}
        for name, res in self.cfn["Resources"].items():
            cond = res.get("Condition")
            if cond is None or self.resolver.condition(cond):
                self.resources[name] = self.resolver.resolve(res)

    def of_type(self, type_):
        return {n: r for n, r in self.resources.items() if r["Type"] == type_}

    def one(self, type_):
        found = self.of_type(type_)
        assert len(found) == 1, (type_, sorted(found))
        return next(iter(found.items()))

    def function(self):
        return self.resources["RegisterFunction"]["Properties"]


@pytest.fixture(scope="session")
def create():
    return Stack()


@pytest.fixture(scope="session")
def join():
    return Stack(JOIN)


@pytest.fixture(scope="session", params=["create", "join"])
def stack(request, create, join):
    return {"create": create, "join": join}[request.param]


def render(node, values):
    """A string as CloudFormation would build it: Fn::Sub, Fn::Select, Fn::Split, Fn::Join on
    parameter values; a resource attribute stays a placeholder <Name.Attr>, a resource Ref <Name>."""
    import re

    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return [render(x, values) for x in node]
    (fn, arg), = node.items()
    if fn == "Ref":
        v = values.get(arg, f"<{arg}>")
        return ",".join(v) if isinstance(v, list) else v
    if fn == "Fn::GetAtt":
        return "<" + ".".join(arg) + ">"
    if fn == "Fn::Join":
        return arg[0].join(render(arg[1], values))
    if fn == "Fn::Split":
        return render(arg[1], values).split(arg[0])
    if fn == "Fn::Select":
        return render(arg[1], values)[int(arg[0])]
    if fn == "Fn::Sub":
        text, local = (arg, {}) if isinstance(arg, str) else arg
        local = {k: render(v, values) for k, v in local.items()}

        def sub(m):
            name = m.group(1)
            if name in local:
                return local[name]
            if name in values:
                v = values[name]
                return ",".join(v) if isinstance(v, list) else str(v)
            return f"<{name}>"

        return re.sub(r"\$\{([^}!]+)\}", sub, text)
    raise ValueError(node)
