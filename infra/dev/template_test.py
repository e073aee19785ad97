"""What `sam validate` and cfn-lint cannot see in template.yaml and samconfig.toml.

The linters check that the template is well formed; these tests check the decisions
docs/deploy.md records (issue 21), each of which only bites in a real account: build
and deploy on one architecture, a half-set VPC refused before anything is created, the
bucket's lifecycle, uploads the functions could not read, the DLQ ARNs, and retries
that outlast an outage; and issue 15's TLS and IAM auth settings: verify-full by default,
the root certificates the functions get, `rds-db:connect` only with IAM auth. The VPC
and IAM rules are evaluated here (cfn-lint does not evaluate
Rules, and does not even reject a function that Rules may not use).

Run by infra/dev/check-template.sh with the venv's Python (it needs cfn-lint's
template decoder and SAM's translator): python infra/dev/template_test.py [-v]
"""

import copy
import json
import os
import subprocess
import sys
import tomllib
import unittest

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.environ.get("BRONZE_TEMPLATE", os.path.join(REPO, "template.yaml"))
SAMCONFIG = os.environ.get("BRONZE_SAMCONFIG", os.path.join(REPO, "samconfig.toml"))

DAY = 86400
HOUR = 3600


def bronze_binary():
    """The `bronze` command: BRONZE_BIN, else the debug build in cargo's target
    directory (which CARGO_TARGET_DIR moves), built if the test suite has not yet."""
    if os.environ.get("BRONZE_BIN"):
        return os.environ["BRONZE_BIN"]
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO, check=True, capture_output=True, text=True).stdout)
    binary = os.path.join(meta["target_directory"], "debug", "bronze")
    if not os.path.exists(binary):
        subprocess.run(["cargo", "build", "-q", "-p", "bronze-cli"], cwd=REPO, check=True)
    return binary


def load_template():
    template, matches = decode(TEMPLATE)
    if matches:
        raise SystemExit(f"{TEMPLATE}: cannot be decoded: {matches}")
    return template


# The functions CloudFormation accepts in a rule's condition and assertions.
RULE_FUNCTIONS = {
    "Fn::And", "Fn::Contains", "Fn::EachMemberEquals", "Fn::EachMemberIn", "Fn::Equals",
    "Fn::Not", "Fn::Or", "Fn::RefAll", "Fn::ValueOf", "Fn::ValueOfAll", "Ref",
}


def parameter_value(template, name, given):
    """A parameter's value as CloudFormation hands it to Ref: a CommaDelimitedList is
    split on commas, so "" is the one-member list [""] (the Fn::Join in the InVpc
    condition and the Rules below both rely on that)."""
    value = given.get(name, template["Parameters"][name].get("Default"))
    if template["Parameters"][name]["Type"] == "CommaDelimitedList":
        return str(value).split(",")
    return value


def evaluate(template, node, given):
    """Evaluates a rule assertion or a condition for the given parameter values."""
    if isinstance(node, list):
        return [evaluate(template, item, given) for item in node]
    if not isinstance(node, dict):
        return node
    (function, args), = node.items()
    if function == "Ref":
        if args == "AWS::NoValue":
            return None
        return parameter_value(template, args, given)
    if function == "Condition":
        return evaluate(template, template["Conditions"][args], given)
    if function == "Fn::If":
        condition, then, otherwise = args
        chosen = evaluate(template, {"Condition": condition}, given)
        return evaluate(template, then if chosen else otherwise, given)
    values = evaluate(template, args, given)
    if function == "Fn::And":
        return all(values)
    if function == "Fn::Or":
        return any(values)
    if function == "Fn::Not":
        return not values[0]
    if function == "Fn::Equals":
        return values[0] == values[1]
    if function == "Fn::Contains":
        return values[1] in values[0]
    if function == "Fn::EachMemberEquals":
        return all(member == values[1] for member in values[0])
    if function == "Fn::Join":
        return values[0].join(values[1])
    raise AssertionError(f"no evaluator for {function}")


def functions_in(node):
    if isinstance(node, list):
        for item in node:
            yield from functions_in(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                yield key
            yield from functions_in(value)


def overrides(value):
    """samconfig's parameter_overrides (a string or a list) as a dict."""
    items = value.split() if isinstance(value, str) else value
    return dict(item.split("=", 1) for item in items)


class Template(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = load_template()
        cls.resources = cls.t["Resources"]
        cls.parameters = cls.t["Parameters"]

    def default(self, name):
        return int(self.parameters[name]["Default"])

    def of_type(self, kind):
        return {name: r for name, r in self.resources.items() if r["Type"] == kind}

    # 1. Build and deploy on one architecture.
    def test_1_functions_run_on_the_architecture_parameter(self):
        self.assertEqual(
            self.t["Globals"]["Function"]["Architectures"], [{"Ref": "Architecture"}]
        )
        for name, function in self.of_type("AWS::Serverless::Function").items():
            self.assertNotIn("Architectures", function["Properties"], name)

    def test_1_samconfig_gives_build_and_deploy_one_architecture(self):
        with open(SAMCONFIG, "rb") as f:
            config = tomllib.load(f)
        allowed = self.parameters["Architecture"]["AllowedValues"]
        for env, commands in config.items():
            if not isinstance(commands, dict):
                continue  # version
            glob = commands.get("global", {}).get("parameters", {})
            self.assertIn("parameter_overrides", glob, f"[{env}.global.parameters]")
            self.assertIn(overrides(glob["parameter_overrides"]).get("Architecture"), allowed)
            # A command section's parameter_overrides replaces the global list for that
            # command alone (sam deploy --guided writes one under deploy).
            for command, sections in commands.items():
                if command == "global":
                    continue
                self.assertNotIn(
                    "parameter_overrides",
                    sections.get("parameters", {}),
                    f"[{env}.{command}.parameters] has its own parameter_overrides: move "
                    f"them to [{env}.global.parameters], which sam build reads too",
                )

    # 2. The secret's keys as shared/src/db.rs reads them.
    def test_2_secret_parameter_names_the_keys_read(self):
        description = self.parameters["DatabaseSecretArn"]["Description"]
        for key in ["username", "password", "host", "port", "dbname"]:
            self.assertIn(key, description)
        self.assertIn("number or string", description)
        self.assertIn("master user", description)

    # 3. A half-set VPC is refused at deploy time.
    def vpc_cases(self):
        return {
            ("", ""): True,
            ("subnet-a,subnet-b", "sg-c"): True,
            ("subnet-a", "sg-c,sg-d"): True,
            ("subnet-a,subnet-b", ""): False,
            ("", "sg-c"): False,
            ("subnet-a,", "sg-c"): False,
            ("subnet-a", ",sg-c"): False,
        }

    def test_3_rules_use_only_rule_functions(self):
        for name, rule in self.t["Rules"].items():
            for function in functions_in(rule):
                self.assertIn(function, RULE_FUNCTIONS, name)

    def test_3_half_set_vpc_is_refused_and_the_rest_pass(self):
        assertions = self.t["Rules"]["VpcSubnetsAndSecurityGroupsTogether"]["Assertions"]
        for (subnets, groups), allowed in self.vpc_cases().items():
            given = {"VpcSubnetIds": subnets, "VpcSecurityGroupIds": groups}
            passed = all(evaluate(self.t, a["Assert"], given) for a in assertions)
            self.assertEqual(passed, allowed, given)

    def test_3_what_the_rule_lets_through_is_what_InVpc_means(self):
        for (subnets, groups), allowed in self.vpc_cases().items():
            if allowed:
                given = {"VpcSubnetIds": subnets, "VpcSecurityGroupIds": groups}
                in_vpc = evaluate(self.t, {"Condition": "InVpc"}, given)
                self.assertEqual(in_vpc, subnets != "", given)

    def test_3_rules_and_deletion_policies_survive_the_sam_transform(self):
        # What CloudFormation receives is SAM's output; make sure it still holds them.
        class NoManagedPolicies:
            def load(self):
                return {}

        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        template = json.loads(json.dumps(copy.deepcopy(self.t)))
        template["Globals"]["Function"]["CodeUri"] = "s3://bucket/code.zip"  # as after sam package
        out = transform(template, {}, NoManagedPolicies())
        self.assertEqual(out["Rules"], json.loads(json.dumps(self.t["Rules"])))
        for name in ["LandingBucket", "LandingBucketPolicy"]:
            self.assertEqual(out["Resources"][name]["DeletionPolicy"], "RetainExceptOnCreate")

    # 4. Stack lifecycle.
    def test_4_bucket_and_its_policy_are_kept_except_on_a_failed_create(self):
        for name in ["LandingBucket", "LandingBucketPolicy"]:
            self.assertEqual(self.resources[name]["DeletionPolicy"], "RetainExceptOnCreate", name)
            self.assertEqual(self.resources[name]["UpdateReplacePolicy"], "Retain", name)
        policy = self.resources["LandingBucketPolicy"]["Properties"]
        self.assertEqual(policy["Bucket"], {"Ref": "LandingBucket"})

    def test_4_nothing_else_is_retained(self):
        # The doc lists what a delete leaves: the bucket and its policy, nothing more.
        kept = {n for n, r in self.resources.items() if r.get("DeletionPolicy", "Delete") != "Delete"}
        self.assertEqual(kept, {"LandingBucket", "LandingBucketPolicy"})

    # 5. Costs that only grow.
    def lifecycle_rules(self):
        bucket = self.resources["LandingBucket"]["Properties"]
        self.assertEqual(bucket["VersioningConfiguration"]["Status"], "Enabled")
        rules = bucket["LifecycleConfiguration"]["Rules"]
        for rule in rules:
            self.assertEqual(rule["Status"], "Enabled", rule["Id"])
            self.assertNotIn("ExpirationInDays", rule, "current versions are never expired")
        return rules

    def test_5_noncurrent_versions_expire_after_the_messages_that_name_them(self):
        [rule] = [r for r in self.lifecycle_rules() if "NoncurrentVersionExpiration" in r]
        self.assertEqual(
            rule["NoncurrentVersionExpiration"]["NoncurrentDays"],
            {"Ref": "NoncurrentVersionExpirationInDays"},
        )
        keep = self.default("NoncurrentVersionExpirationInDays") * DAY
        for queue, dlq in [("LandingQueue", "LandingDLQ"), ("LoadQueue", "LoadDLQ")]:
            lives = sum(
                int(self.resources[q]["Properties"]["MessageRetentionPeriod"]) for q in (queue, dlq)
            )
            self.assertGreater(keep, lives, f"{queue} + {dlq} retention")

    def test_5_incomplete_uploads_and_expired_delete_markers_are_cleaned_up(self):
        rules = self.lifecycle_rules()
        days = [r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for r in rules
                if "AbortIncompleteMultipartUpload" in r]
        self.assertEqual(len(days), 1)
        self.assertGreaterEqual(int(days[0]), 1)
        self.assertTrue(any(r.get("ExpiredObjectDeleteMarker") is True for r in rules))

    # 6. Objects the functions cannot read.
    def bucket_statements(self):
        return self.resources["LandingBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]

    def test_6_bucket_default_is_sse_s3(self):
        [rule] = self.resources["LandingBucket"]["Properties"]["BucketEncryption"][
            "ServerSideEncryptionConfiguration"
        ]
        self.assertEqual(rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"], "AES256")

    def test_6_uploads_with_sse_kms_or_sse_c_are_denied(self):
        objects = {"Fn::Sub": "${LandingBucket.Arn}/*"}
        denies = [s for s in self.bucket_statements()
                  if s["Effect"] == "Deny" and s["Principal"] == "*"
                  and s["Action"] in ("s3:PutObject", ["s3:PutObject"]) and s["Resource"] == objects]
        conditions = [s["Condition"] for s in denies]
        self.assertIn(
            {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "AES256"}}, conditions
        )
        self.assertIn(
            {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}}, conditions
        )

    def test_6_tls_only_still_covers_bucket_and_objects(self):
        [tls] = [s for s in self.bucket_statements() if s["Sid"] == "DenyInsecureTransport"]
        self.assertEqual(tls["Condition"], {"Bool": {"aws:SecureTransport": "false"}})
        self.assertEqual(len(tls["Resource"]), 2)

    def test_6_a_gone_version_answers_404_not_403(self):
        for role in ["DispatchRole", "LoadRole"]:
            [policy] = self.resources[role]["Properties"]["Policies"]
            statements = [s for s in policy["PolicyDocument"]["Statement"] if isinstance(s, dict)]
            def actions_on(resource):
                return {a for s in statements if s.get("Resource") == resource
                        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}

            on_bucket = actions_on({"Fn::GetAtt": ["LandingBucket", "Arn"]})
            self.assertTrue({"s3:ListBucket", "s3:ListBucketVersions"} <= on_bucket, role)
            on_objects = actions_on({"Fn::Sub": "${LandingBucket.Arn}/*"})
            self.assertEqual(on_objects, {"s3:GetObject", "s3:GetObjectVersion"}, role)

    # 7. Operators need ARNs.
    def test_7_every_queue_has_its_url_and_arn_in_the_outputs(self):
        values = [o["Value"] for o in self.t["Outputs"].values()]
        for name in self.of_type("AWS::SQS::Queue"):
            self.assertIn({"Ref": name}, values, f"{name} URL")
            self.assertIn({"Fn::GetAtt": [name, "Arn"]}, values, f"{name} ARN")

    # 8. Retries that outlast an outage.
    def test_8_redrive_counts_are_parameters_that_ride_out_an_hour(self):
        queues = self.of_type("AWS::SQS::Queue")
        redriven = {n: q for n, q in queues.items() if "RedrivePolicy" in q["Properties"]}
        self.assertEqual(set(redriven), {"LandingQueue", "LoadQueue"})
        for name, queue in redriven.items():
            count = queue["Properties"]["RedrivePolicy"]["maxReceiveCount"]
            self.assertIn("Ref", count, name)
            parameter = self.parameters[count["Ref"]]
            self.assertGreaterEqual(int(parameter["MinValue"]), 1)
            self.assertLessEqual(int(parameter["MaxValue"]), 1000)
            visibility = int(queue["Properties"]["VisibilityTimeout"])
            self.assertGreaterEqual(visibility * self.default(count["Ref"]), HOUR, name)

    def test_8_visibility_covers_six_function_timeouts(self):
        # What the counts above multiply: Lambda's advice, kept when counts change.
        for function, queue in [("DispatchFunction", "LandingQueue"), ("LoadFunction", "LoadQueue")]:
            props = self.resources[function]["Properties"]
            [event] = props["Events"].values()
            window = int(event["Properties"]["MaximumBatchingWindowInSeconds"])
            visibility = int(self.resources[queue]["Properties"]["VisibilityTimeout"])
            self.assertGreaterEqual(visibility, 6 * int(props["Timeout"]) + window, queue)

    # 9. TLS and IAM auth (issue 15, docs/security.md).
    def environment(self):
        return self.t["Globals"]["Function"]["Environment"]["Variables"]

    def role_statements(self, role):
        [policy] = self.resources[role]["Properties"]["Policies"]
        return policy["PolicyDocument"]["Statement"]

    def test_9_sslmode_is_libpqs_and_verify_full_by_default(self):
        mode = self.parameters["DatabaseSslMode"]
        self.assertEqual(mode["Default"], "verify-full")
        self.assertEqual(
            sorted(mode["AllowedValues"]),
            sorted(["disable", "prefer", "require", "verify-ca", "verify-full"]),
        )
        self.assertEqual(self.environment()["DATABASE_SSLMODE"], {"Ref": "DatabaseSslMode"})
        self.assertEqual(self.environment()["DATABASE_AUTH"], {"Ref": "DatabaseAuth"})
        auth = self.parameters["DatabaseAuth"]
        self.assertEqual((auth["Default"], sorted(auth["AllowedValues"])), ("password", ["iam", "password"]))

    def test_9_root_certificates_are_the_parameter_else_the_layers_bundle_else_the_system(self):
        root = self.environment()["DATABASE_SSL_ROOT_CERT"]
        layer = "arn:aws:lambda:eu-west-1:123456789012:layer:rds-ca:3"
        cases = [
            ({}, "system"),
            ({"DatabaseCaBundleLayerArn": layer}, "/opt/global-bundle.pem"),
            ({"DatabaseCaBundleLayerArn": layer, "DatabaseSslRootCert": "/opt/other.pem"}, "/opt/other.pem"),
            ({"DatabaseSslRootCert": "system"}, "system"),
        ]
        for given, expected in cases:
            self.assertEqual(evaluate(self.t, root, given), expected, given)
        layers = self.t["Globals"]["Function"]["Layers"]
        self.assertIsNone(evaluate(self.t, layers, {}))
        self.assertEqual(evaluate(self.t, layers, {"DatabaseCaBundleLayerArn": layer}), [layer])

    def test_9_rds_db_connect_is_granted_only_with_iam_auth(self):
        for role in ["DispatchRole", "LoadRole"]:
            statements = self.role_statements(role)
            conditional = [s["Fn::If"] for s in statements if isinstance(s, dict) and "Fn::If" in s]
            grants = [then for condition, then, _ in conditional
                      if isinstance(then, dict) and then.get("Action") == "rds-db:connect"]
            self.assertEqual(len(grants), 1, role)
            [condition] = [c for c, then, _ in conditional if then in grants]
            self.assertEqual(condition, "UseIamAuth", role)
            resource = grants[0]["Resource"]["Fn::Sub"]
            self.assertTrue(resource.endswith(":dbuser:${DatabaseIamResourceId}/${DatabaseIamUser}"), resource)
            self.assertTrue(resource.startswith("arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:"))
            plain = json.dumps([s for s in statements if "Fn::If" not in s])
            self.assertNotIn("rds-db", plain, f"{role}: rds-db granted unconditionally")
        for auth, expected in [("password", False), ("iam", True)]:
            self.assertEqual(evaluate(self.t, {"Condition": "UseIamAuth"}, {"DatabaseAuth": auth}), expected)

    def test_9_iam_auth_is_refused_without_its_database_user(self):
        rule = self.t["Rules"]["IamAuthNamesItsDatabaseUser"]
        for function in functions_in(rule):
            self.assertIn(function, RULE_FUNCTIONS)
        full = {"DatabaseIamResourceId": "db-ABCDEFGHIJKL", "DatabaseIamUser": "bronze_loader"}
        cases = [
            ({"DatabaseAuth": "password"}, True),
            ({"DatabaseAuth": "iam", **full}, True),
            ({"DatabaseAuth": "iam"}, False),
            ({"DatabaseAuth": "iam", "DatabaseIamResourceId": "db-ABCDEFGHIJKL"}, False),
            ({"DatabaseAuth": "iam", "DatabaseIamUser": "bronze_loader"}, False),
        ]
        for given, allowed in cases:
            applies = evaluate(self.t, rule["RuleCondition"], given)
            passed = not applies or all(evaluate(self.t, a["Assert"], given) for a in rule["Assertions"])
            self.assertEqual(passed, allowed, given)


    # Issue 16: alarms on what needs a human.
    def test_15_the_generated_bucket_policy_keeps_the_templates_statements(self):
        policy = self.t["Resources"]["LandingBucketPolicy"]
        self.assertEqual(policy["Condition"], "ManagesBucketPolicy")
        arn = "arn:aws:s3:::landing"

        def render(node):
            if isinstance(node, list):
                return [render(n) for n in node]
            if isinstance(node, dict):
                if node.get("Fn::GetAtt") == ["LandingBucket", "Arn"]:
                    return arn
                if "Fn::Sub" in node:
                    return node["Fn::Sub"].replace("${LandingBucket.Arn}", arn)
                return {k: render(v) for k, v in node.items()}
            return node

        ours = render(policy["Properties"]["PolicyDocument"]["Statement"])
        generated = json.loads(subprocess.run(
            [bronze_binary(), "tenants", "bucket-policy", "--bucket", "landing"],
            env={**os.environ, "BRONZE_TENANT_WRITERS": '{"acme": ["AWS:AIDAACME"]}',
                 "BRONZE_TENANTS": "acme"},
            check=True, capture_output=True, text=True).stdout)["Statement"]
        self.assertEqual(generated[:len(ours)], ours)
        self.assertEqual([s["Sid"] for s in generated[len(ours):]],
                         ["OnlyWriters1", "OnlyListedTenants"])

    def test_16_alarms_watch_dead_letters_queues_load_rejects_and_quality(self):
        alarms = self.of_type("AWS::CloudWatch::Alarm")
        watched = set()
        for name, alarm in alarms.items():
            props = alarm["Properties"]
            self.assertIn({"Ref": "AlarmTopic"}, props["AlarmActions"], name)
            if "MetricName" in props:
                dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
                target = dims.get("QueueName") or dims.get("FunctionName") or dims.get("Function")
                watched.add((props["MetricName"], json.dumps(target, sort_keys=True)))
            else:
                self.assertIn("QualityScore", json.dumps(props["Metrics"]))
                watched.add(("QualityScore", "datasets"))
        def queue(name):
            return json.dumps({"Fn::GetAtt": [name, "QueueName"]}, sort_keys=True)
        function = json.dumps({"Ref": "LoadFunction"}, sort_keys=True)
        for expected in [
            ("ApproximateNumberOfMessagesVisible", queue("LandingDLQ")),
            ("ApproximateNumberOfMessagesVisible", queue("LoadDLQ")),
            ("ApproximateAgeOfOldestMessage", queue("LandingQueue")),
            ("ApproximateAgeOfOldestMessage", queue("LoadQueue")),
            ("Errors", function),
            ("Throttles", function),
            ("ObjectsRejected", json.dumps("load")),
            ("QualityScore", "datasets"),
        ]:
            self.assertIn(expected, watched)

    def test_16_the_alarm_email_is_optional(self):
        topic = self.resources["AlarmTopic"]["Properties"]
        self.assertEqual(topic["Subscription"]["Fn::If"][0], "HasAlarmEmail")
        self.assertEqual(self.parameters["AlarmEmail"]["Default"], "")

    # Issue 18: the records API.
    def test_18_the_api_writes_only_its_own_prefixes_and_is_authorized(self):
        statements = self.role_statements("ApiRole")
        plain = [s for s in statements if "Fn::If" not in s]
        s3 = [s for s in plain if any(a.startswith("s3:") for a in
                                       ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))]
        self.assertEqual(len(s3), 1, s3)
        resources = [r["Fn::Sub"] for r in s3[0]["Resource"]]
        self.assertEqual(resources, ["${LandingBucket.Arn}/*/*/_api/*", "${LandingBucket.Arn}/*/*/_uploads/*"])
        self.assertNotIn("sqs:", json.dumps(plain), "the API writes files, never queue messages")
        api = self.resources["RecordsApi"]["Properties"]["Auth"]
        self.assertEqual(api["DefaultAuthorizer"], "TenantJwt")
        self.assertIn("JwtConfiguration", api["Authorizers"]["TenantJwt"])
        url = self.resources["ApiStreamFunction"]["Properties"]["FunctionUrlConfig"]
        self.assertEqual(url, {"AuthType": "AWS_IAM", "InvokeMode": "RESPONSE_STREAM"})
        for name in ["ApiFunction", "ApiStreamFunction"]:
            self.assertEqual(self.resources[name]["Metadata"]["BuildProperties"]["Binary"], "api")
        for given, on in [({}, False), ({"ApiJwtIssuer": "https://issuer.example"}, True)]:
            self.assertEqual(evaluate(self.t, {"Condition": "ApiOn"}, given), on)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], *sys.argv[1:]])
