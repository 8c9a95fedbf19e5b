"""The promises of deploy/terraform, read from its HCL (python-hcl2): encryption with the customer-managed
key, public access blocked, TLS only, IAM limited to the bucket prefix and the key with no wildcards,
no public exposure, tokens in Secrets, and sensor privileges exactly as the README documents them."""

import re

import pytest

from hcl import MODULE_DIR, Module, containers, env_of, one, pod_spec

M = Module()
README = (MODULE_DIR / "README.md").read_text()

BUCKET = "${aws_s3_bucket.spans.id}"
KEY_ARN = "${aws_kms_key.lumen.arn}"
BUCKET_ARN = "${local.bucket_arn}"
LUMEN_OBJECTS = "${local.bucket_arn}/${local.storage_prefix}/*"
RESULT_OBJECTS = "${local.bucket_arn}/${local.athena_results_prefix}/*"
KEY_POLICY = "kms"


def section(title):
    """The README text under a '## title' heading, up to the next heading of the same level."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert m, f"README.md has no '## {title}' section"
    return m.group(1)


def table_rows(text):
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|") and not re.match(r"^\|\s*-", line)
    ][1:]  # without the header row


# --- storage -----------------------------------------------------------------------------------------

def test_one_bucket_and_every_bucket_setting_targets_it():
    assert list(M.of_type("aws_s3_bucket")) == ["spans"]
    assert M.resource("aws_s3_bucket", "spans")["bucket"] == "${local.bucket_name}"
    assert M.locals["bucket_arn"] == "arn:${local.partition}:s3:::${local.bucket_name}"
    for rtype in (
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_policy",
        "aws_s3_bucket_lifecycle_configuration",
        "aws_s3_bucket_ownership_controls",
    ):
        assert M.resource(rtype, "spans")["bucket"] == BUCKET, rtype


def test_default_encryption_is_sse_kms_with_the_customer_managed_key():
    rule = one(M.resource("aws_s3_bucket_server_side_encryption_configuration", "spans")["rule"])
    default = one(rule["apply_server_side_encryption_by_default"])
    assert default["sse_algorithm"] == "aws:kms"
    assert default["kms_master_key_id"] == KEY_ARN
    assert rule["bucket_key_enabled"] is True


def test_the_key_rotates_has_an_explicit_policy_and_is_enabled():
    key = M.resource("aws_kms_key", "lumen")
    assert key["enable_key_rotation"] is True
    assert key["is_enabled"] is True
    assert key["key_usage"] == "ENCRYPT_DECRYPT"
    assert M.policy_doc_name(key["policy"]) == KEY_POLICY
    assert M.resource("aws_kms_alias", "lumen")["target_key_id"] == "${aws_kms_key.lumen.key_id}"


def test_all_public_access_is_blocked_and_acls_are_off():
    pab = M.resource("aws_s3_bucket_public_access_block", "spans")
    for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert pab[k] is True, k
    ownership = one(M.resource("aws_s3_bucket_ownership_controls", "spans")["rule"])
    assert ownership["object_ownership"] == "BucketOwnerEnforced"


def test_versioning_is_on():
    v = one(M.resource("aws_s3_bucket_versioning", "spans")["versioning_configuration"])
    assert v["status"] == "Enabled"


def test_bucket_policy_denies_every_request_without_tls():
    policy = M.resource("aws_s3_bucket_policy", "spans")
    doc = M.policy_doc_name(policy["policy"])
    st = M.statement(doc, "DenyInsecureTransport")
    assert st["effect"] == "Deny"
    assert st["actions"] == ["s3:*"]
    assert set(st["resources"]) == {BUCKET_ARN, f"{BUCKET_ARN}/*"}
    assert st["principals"] == [{"type": "*", "identifiers": ["*"]}]
    cond = one(st["condition"])
    assert (cond["test"], cond["variable"], cond["values"]) == ("Bool", "aws:SecureTransport", ["false"])
    # The bucket policy only ever denies.
    assert {s["effect"] for s in M.statements(doc)} == {"Deny"}


def test_lifecycle_expires_spans_after_the_retention_and_aborts_incomplete_uploads():
    rules = {r["id"]: r for r in M.resource("aws_s3_bucket_lifecycle_configuration", "spans")["rule"]}
    assert all(r["status"] == "Enabled" for r in rules.values())
    spans = rules["expire-spans"]
    assert one(spans["filter"]) == {"prefix": "${local.storage_prefix}/spans/"}
    assert one(spans["expiration"]) == {"days": "${var.retention_days}"}
    whole = [r for r in rules.values() if one(r["filter"]) == {}]
    assert len(whole) == 1, "one rule covers the whole bucket"
    assert one(one(whole)["abort_incomplete_multipart_upload"]) == {
        "days_after_initiation": "${var.abort_incomplete_multipart_upload_days}"
    }
    assert one(one(whole)["noncurrent_version_expiration"]) == {"noncurrent_days": "${var.noncurrent_version_retention_days}"}
    # The manifest is never expired by S3.
    for r in rules.values():
        prefix = one(r["filter"]).get("prefix", "")
        assert "_lumen" not in prefix and prefix != "${local.storage_prefix}/", r["id"]


def test_access_logging_is_optional_and_off_by_default():
    logging = M.resource("aws_s3_bucket_logging", "spans")
    assert logging["count"] == "${var.access_log_bucket == null ? 0 : 1}"
    assert M.variables["access_log_bucket"]["default"] is None
    assert logging["target_bucket"] == "${var.access_log_bucket}"


# --- IAM -------------------------------------------------------------------------------------------

POLICY_ARGS = {
    "aws_iam_role": ["assume_role_policy"],
    "aws_iam_role_policy": ["policy"],
    "aws_iam_policy": ["policy"],
    "aws_kms_key": ["policy"],
    "aws_s3_bucket_policy": ["policy"],
}


def test_every_policy_is_an_iam_policy_document_these_tests_read():
    used = set()
    for rtype, args in POLICY_ARGS.items():
        for name, body in M.of_type(rtype).items():
            for arg in args:
                doc = M.policy_doc_name(body.get(arg))
                assert doc, f"{rtype}.{name}.{arg} must come from a data.aws_iam_policy_document"
                used.add(doc)
            assert "inline_policy" not in body and "managed_policy_arns" not in body, f"{rtype}.{name}"
    declared = {name for (t, name) in M.data if t == "aws_iam_policy_document"}
    assert used == declared, f"unused or unchecked policy documents: {declared ^ used}"
    # No other way to grant: no attachments (of AWS managed policies or others), no users or groups.
    for rtype, _ in M.resources:
        assert not rtype.startswith(("aws_iam_user", "aws_iam_group")) and "attachment" not in rtype, rtype


def test_no_wildcard_actions_or_resources_in_any_allow():
    for (t, doc), _ in M.data.items():
        if t != "aws_iam_policy_document":
            continue
        for st in M.statements(doc):
            for p in st["principals"]:
                ids = p["identifiers"]
                ids = [ids] if isinstance(ids, str) else ids
                if st["effect"] == "Allow":
                    assert p["type"] != "*" and all("*" not in i for i in ids), (doc, st.get("sid"))
            if st["effect"] != "Allow":
                continue  # a Deny may be as broad as it likes: broader is stricter
            assert "not_actions" not in st and "not_resources" not in st, (doc, st.get("sid"))
            for action in st["actions"]:
                assert "*" not in action, (doc, st.get("sid"), action)
            if doc == KEY_POLICY:
                # In a key policy "Resource": "*" means this key and nothing else; it is the only form allowed.
                assert st["resources"] == ["*"], st.get("sid")
                continue
            for res in st.get("resources", []):
                if "*" in res:
                    # Only "everything under this prefix" of the two prefixes the module owns.
                    assert res in (LUMEN_OBJECTS, RESULT_OBJECTS), (doc, st.get("sid"), res)


def test_the_key_policy_delegates_administration_only_and_names_who_may_decrypt():
    admin = M.statement(KEY_POLICY, "KeyAdministration")
    assert admin["principals"] == [{"type": "AWS", "identifiers": ["arn:${local.partition}:iam::${local.account_id}:root"]}]
    assert not {"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo"} & set(admin["actions"]), \
        "the account root is not given data-plane use of the key"
    assert all(a.startswith("kms:") for a in admin["actions"])
    backend = M.statement(KEY_POLICY, "BackendUsesKey")
    assert backend["principals"] == [{"type": "AWS", "identifiers": ["${aws_iam_role.backend.arn}"]}]
    assert backend["actions"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert one(backend["condition"]) == {"test": "StringEquals", "variable": "kms:ViaService", "values": ["s3.${local.region}.amazonaws.com"]}
    analysts = M.statement(KEY_POLICY, "AnalystsUseKey")
    assert analysts["principals"] == [{"type": "AWS", "identifiers": "${var.analyst_principal_arns}"}]
    assert analysts["actions"] == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_only_the_backend_service_account_can_assume_the_role():
    role = M.resource("aws_iam_role", "backend")
    doc = M.policy_doc_name(role["assume_role_policy"])
    (st,) = M.statements(doc)
    assert st["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert st["principals"] == [{"type": "Federated", "identifiers": ["${var.eks_oidc_provider_arn}"]}]
    conds = {c["variable"]: c for c in st["condition"]}
    assert conds["${local.oidc_issuer}:sub"]["test"] == "StringEquals"
    assert conds["${local.oidc_issuer}:sub"]["values"] == ["system:serviceaccount:${var.namespace}:${local.backend_service_account}"]
    assert conds["${local.oidc_issuer}:aud"] == {"test": "StringEquals", "variable": "${local.oidc_issuer}:aud", "values": ["sts.amazonaws.com"]}
    sa = M.resource("kubernetes_service_account_v1", "backend")
    meta = one(sa["metadata"])
    assert meta["name"] == "${local.backend_service_account}"
    assert meta["annotations"]["eks.amazonaws.com/role-arn"] == "${aws_iam_role.backend.arn}"
    assert pod_spec(M.resource("kubernetes_stateful_set_v1", "backend"))["service_account_name"] == \
        "${kubernetes_service_account_v1.backend.metadata[0].name}"


def test_the_backend_role_allows_exactly_the_storage_prefix_and_the_key():
    policy = M.resource("aws_iam_role_policy", "backend")
    assert policy["role"] == "${aws_iam_role.backend.id}"
    doc = M.policy_doc_name(policy["policy"])
    grants = {}
    for st in M.statements(doc):
        assert st["effect"] == "Allow"
        for action in st["actions"]:
            for res in st["resources"]:
                grants.setdefault(action, set()).add(res)
    assert grants == {
        "s3:ListBucket": {BUCKET_ARN},
        "s3:GetObject": {LUMEN_OBJECTS},
        "s3:PutObject": {LUMEN_OBJECTS},
        "s3:DeleteObject": {LUMEN_OBJECTS},
        "s3:AbortMultipartUpload": {LUMEN_OBJECTS},
        "s3:ListMultipartUploadParts": {LUMEN_OBJECTS},
        "kms:Decrypt": {KEY_ARN},
        "kms:GenerateDataKey": {KEY_ARN},
    }
    listing = M.statement(doc, "ListLumenPrefix")
    assert one(listing["condition"]) == {"test": "StringLike", "variable": "s3:prefix", "values": ["${local.storage_prefix}/*"]}
    key = M.statement(doc, "UseSpansKeyThroughS3")
    assert one(key["condition"])["variable"] == "kms:ViaService"
    # The README's table of the backend's permissions lists the same actions.
    documented = {a for a in re.findall(r"`((?:s3|kms):[A-Za-z]+)`", section("Backend IAM role"))
                  if a not in ("s3:prefix", "kms:ViaService")}  # condition keys, not actions
    assert documented == set(grants)


def test_the_backend_writes_where_the_role_points():
    assert M.locals["storage_url"] == "s3://${local.bucket_name}/${local.storage_prefix}"
    assert "LUMEN_STORAGE = local.storage_url" in M.locals["backend_env"]
    backend = one(containers(M.resource("kubernetes_stateful_set_v1", "backend")))
    assert env_of(backend)["<dynamic>"] == "${local.backend_env}"


def test_the_analyst_policy_reads_spans_and_writes_only_athena_results():
    doc = M.policy_doc_name(M.resource("aws_iam_policy", "analyst")["policy"])
    writes = {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}
    for st in M.statements(doc):
        assert st["effect"] == "Allow"
        for action in st["actions"]:
            assert action.split(":")[0] in ("s3", "athena", "glue", "kms"), action
            assert not action.startswith(("s3:Delete", "glue:Create", "glue:Update", "glue:Delete", "athena:Create",
                                          "athena:Update", "athena:Delete")), action
            if action in writes:
                assert st["resources"] == [RESULT_OBJECTS], f"{action} only on Athena results"
            if action.startswith("s3:"):
                assert set(st["resources"]) <= {BUCKET_ARN, LUMEN_OBJECTS, RESULT_OBJECTS}, action
            if action.startswith("kms:"):
                assert st["resources"] == [KEY_ARN]


# --- Athena and Glue ------------------------------------------------------------------------------

def test_athena_workgroup_enforces_kms_encrypted_results():
    wg = one(M.resource("aws_athena_workgroup", "lumen")["configuration"])
    assert wg["enforce_workgroup_configuration"] is True
    result = one(wg["result_configuration"])
    enc = one(result["encryption_configuration"])
    assert enc == {"encryption_option": "SSE_KMS", "kms_key_arn": KEY_ARN}
    assert result["output_location"] == "${local.athena_results_location}"
    assert M.locals["athena_results_location"] == "s3://${local.bucket_name}/${local.athena_results_prefix}/"


def test_glue_table_reads_the_spans_prefix_with_partition_projection():
    table = M.resource("aws_glue_catalog_table", "spans")
    assert table["table_type"] == "EXTERNAL_TABLE"
    assert one(table["storage_descriptor"])["location"] == "${local.spans_location}"
    assert M.locals["spans_location"] == "s3://${local.bucket_name}/${local.storage_prefix}/spans/"
    p = table["parameters"]
    assert p["projection.enabled"] == "true"
    assert p["storage.location.template"] == "${local.spans_location}date=$${date}/hour=$${hour}/"
    assert [k["name"] for k in table["partition_keys"]] == ["date", "hour"]


def test_the_p90_query_is_documented():
    q = M.resource("aws_athena_named_query", "p90_latency_by_model")["query"]
    assert "approx_percentile(duration_ms, 0.9)" in q and "GROUP BY request_model" in q
    assert "approx_percentile(duration_ms, 0.9)" in section("Athena")


# --- Kubernetes -------------------------------------------------------------------------------------

def test_nothing_is_exposed_outside_the_cluster():
    services = M.of_type("kubernetes_service_v1")
    assert services, "the backend has a Service"
    for name, svc in services.items():
        assert one(svc["spec"])["type"] == "ClusterIP", name
    for rtype, _ in M.resources:
        assert "ingress" not in rtype and "load_balancer" not in rtype and not rtype.startswith("aws_lb"), rtype
    for name, text in M.text.items():
        assert "LoadBalancer" not in text and "NodePort" not in text, name
    for name, c in (("backend", containers(M.resource("kubernetes_stateful_set_v1", "backend"))),
                    ("sensor", containers(M.resource("kubernetes_daemon_set_v1", "sensor")))):
        for container in c:
            for port in container.get("port", []):
                assert "host_port" not in port, name


def test_tokens_live_in_secrets_and_auth_is_never_disabled():
    backend = one(containers(M.resource("kubernetes_stateful_set_v1", "backend")))
    env = env_of(backend)
    assert env["LUMEN_INGEST_TOKEN"] == ("secret", "${kubernetes_secret_v1.ingest_token.metadata[0].name}", "token")
    assert env["LUMEN_QUERY_TOKEN"] == ("secret", "${kubernetes_secret_v1.query_token.metadata[0].name}", "token")
    sensor = one(containers(M.resource("kubernetes_daemon_set_v1", "sensor")))
    senv = env_of(sensor)
    assert senv["LUMEN_TOKEN"] == ("secret", "${kubernetes_secret_v1.ingest_token.metadata[0].name}", "token")
    assert all("query_token" not in str(v) for v in senv.values()), "the sensor never gets the query token"
    for name in ("ingest_token", "query_token"):
        secret = M.resource("kubernetes_secret_v1", name)
        assert secret["data"] == {"token": f"${{local.{name}}}"}
        assert M.variables[name]["sensitive"] is True
        assert M.outputs[name]["sensitive"] is True
        assert M.locals[name] == f"${{coalesce(var.{name}, random_password.{name}.result)}}"
    for text in M.text.values():
        assert "ALLOW_UNAUTHENTICATED\" =" not in text and "LUMEN_ALLOW_UNAUTHENTICATED =" not in text


def test_backend_runs_unprivileged_with_a_persistent_wal():
    sts = M.resource("kubernetes_stateful_set_v1", "backend")
    pod = pod_spec(sts)
    psc = one(pod["security_context"])
    assert psc["run_as_non_root"] is True and psc["run_as_user"] != 0
    assert one(psc["seccomp_profile"])["type"] == "RuntimeDefault"
    assert pod["automount_service_account_token"] is False
    assert not pod.get("host_pid") and not pod.get("host_network") and not pod.get("host_ipc")
    c = one(pod["container"])
    sc = one(c["security_context"])
    assert sc["privileged"] is False and sc["allow_privilege_escalation"] is False
    assert sc["read_only_root_filesystem"] is True and sc["run_as_non_root"] is True
    assert one(sc["capabilities"]) == {"drop": ["ALL"]}
    # The WAL lives on the claim of the volume_claim_template, mounted where LUMEN_DATA_DIR points.
    claim = one(one(sts["spec"])["volume_claim_template"])
    wal = one(claim["metadata"])["name"]
    mounts = {m["name"]: m["mount_path"] for m in c["volume_mount"]}
    assert mounts[wal] == "${local.backend_data_dir}"
    assert "LUMEN_DATA_DIR = local.backend_data_dir" in M.locals["backend_env"]
    assert "LUMEN_STORAGE = local.storage_url" in M.locals["backend_env"]
    assert one(claim["spec"])["access_modes"] == ["ReadWriteOnce"]
    assert all(v.get("host_path") is None for v in pod.get("volume", []))


def test_service_accounts_carry_no_kubernetes_api_token():
    for name, sa in M.of_type("kubernetes_service_account_v1").items():
        assert sa["automount_service_account_token"] is False, name
    assert not [t for t, _ in M.resources if "role_binding" in t or t.startswith("kubernetes_cluster_role")], \
        "neither workload is granted Kubernetes API access"


# --- the sensor's privileges, against the README --------------------------------------------------

def documented_privileges():
    rows = table_rows(section("Sensor privileges"))
    caps, other = set(), set()
    for row in rows:
        m = re.search(r"`CAP_([A-Z_]+)`", row[0])
        if m:
            caps.add(m.group(1))
        else:
            other.add(re.search(r"`([^`]+)`", row[0]).group(1))
    return caps, other


def documented_host_paths():
    rows = table_rows(section("Sensor host paths"))
    out = {}
    for row in rows:
        host = re.findall(r"`(/[^`]+)`", row[0])
        mount = re.search(r"`(/[^`]+)`", row[1]).group(1)
        out[mount] = set(host)
    return out


def test_sensor_capabilities_are_exactly_the_documented_ones():
    caps, other = documented_privileges()
    assert set(M.locals["sensor_capabilities"]) == caps
    assert len(M.locals["sensor_capabilities"]) == len(caps)
    sensor = one(containers(M.resource("kubernetes_daemon_set_v1", "sensor")))
    sc = one(sensor["security_context"])
    assert one(sc["capabilities"]) == {"drop": ["ALL"], "add": "${local.sensor_capabilities}"}
    assert not caps & {"SYS_ADMIN", "NET_ADMIN", "NET_RAW", "SYS_MODULE", "SYS_RESOURCE", "DAC_OVERRIDE"}
    assert other == {"hostPID: true", "runAsUser: 0"}
    # The "Not granted" line of the README names what was considered and left out.
    not_granted = section("Sensor privileges").split("Not granted", 1)[1]
    for absent in ("CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "hostNetwork", "privileged"):
        assert absent in not_granted, absent


def test_sensor_pod_shares_only_the_pid_namespace_and_is_not_privileged():
    pod = pod_spec(M.resource("kubernetes_daemon_set_v1", "sensor"))
    assert pod["host_pid"] is True
    assert pod["host_network"] is False and pod["host_ipc"] is False
    assert pod["automount_service_account_token"] is False
    sc = one(one(pod["container"])["security_context"])
    assert sc["privileged"] is False
    assert sc["allow_privilege_escalation"] is False
    assert sc["read_only_root_filesystem"] is True
    assert sc["run_as_user"] == 0
    assert one(sc["seccomp_profile"])["type"] == "RuntimeDefault"


def test_sensor_host_paths_are_exactly_the_documented_ones_and_read_only():
    pod = pod_spec(M.resource("kubernetes_daemon_set_v1", "sensor"))
    container = one(pod["container"])
    volumes = {v["name"]: v for v in pod["volume"]}
    mounts = {m["name"]: m for m in container["volume_mount"]}
    host = {}
    for name, v in volumes.items():
        if "host_path" not in v:
            assert "empty_dir" in v, name
            continue
        path = one(v["host_path"])["path"]
        if path.startswith("${var."):
            var = M.variables[path[len("${var."):-1]]
            # The variable can only name the places tracefs is mounted; its validation lists them.
            allowed = set(re.findall(r'"(/[^"]+)"', str(var["validation"])))
            assert var["default"] in allowed
            paths = allowed
        else:
            paths = {path}
        m = mounts[name]
        assert m.get("read_only") is True, f"host path volume {name} must be mounted read-only"
        host[m["mount_path"]] = paths
    assert host == documented_host_paths()
    for paths in host.values():
        for p in paths:
            assert p not in ("/", "/proc", "/sys", "/var/run", "/run") and "sock" not in p and "containerd" not in p, p


def test_the_sensor_talks_to_the_internal_service():
    sensor = one(containers(M.resource("kubernetes_daemon_set_v1", "sensor")))
    args = sensor["args"]
    assert args[:1] == ["run"]
    assert args[args.index("--endpoint") + 1] == "${local.backend_url}"
    assert M.locals["backend_url"].startswith("http://${local.backend_service_name}.${var.namespace}.svc.cluster.local:")
    assert args[args.index("--capture") + 1] == "${var.sensor_capture_mode}"


# --- variables and outputs -------------------------------------------------------------------------

def test_every_variable_and_output_is_described_and_typed():
    for name, v in M.variables.items():
        assert v.get("description"), f"variable {name} has no description"
        assert v.get("type"), f"variable {name} has no type"
    for name, o in M.outputs.items():
        assert o.get("description"), f"output {name} has no description"


@pytest.mark.parametrize("name", ["name", "bucket_name", "storage_prefix", "retention_days", "noncurrent_version_retention_days",
                                  "abort_incomplete_multipart_upload_days", "eks_oidc_provider_arn", "namespace",
                                  "backend_image", "sensor_image", "sensor_capture_mode", "athena_results_prefix",
                                  "partition_projection_start_date", "glue_table_name", "analyst_principal_arns"])
def test_inputs_that_can_be_wrong_are_validated(name):
    assert M.variables[name].get("validation"), f"variable {name} has no validation"


def test_outputs_cover_what_a_user_needs_next():
    assert {
        "bucket_name", "bucket_arn", "storage_url", "kms_key_arn", "backend_role_arn", "namespace",
        "backend_service_dns", "backend_url", "query_token", "ingest_token", "glue_database_name",
        "glue_table_name", "athena_workgroup_name", "athena_results_location", "analyst_policy_arn",
    } <= set(M.outputs)


def test_the_readme_documents_every_variable_and_output():
    for name in M.variables:
        assert f"`{name}`" in section("Inputs"), f"variable {name} missing from the README"
    for name in M.outputs:
        assert f"`{name}`" in section("Outputs"), f"output {name} missing from the README"


def test_the_example_uses_this_module():
    example = Module(MODULE_DIR / "examples" / "complete")
    (call,) = example.modules.values()
    assert call["source"] == "../.."
    required = {n for n, v in M.variables.items() if "default" not in v}
    assert required <= set(call), f"example misses required inputs {required - set(call)}"


def test_every_checkov_skip_is_justified_inline():
    skips = []
    for path in sorted((MODULE_DIR.parent).rglob("*")):
        if path.is_file() and (path.suffix == ".tf" or path.name.endswith("Dockerfile")):
            for line in path.read_text().splitlines():
                if "checkov:skip=" in line:
                    m = re.search(r"#\s*checkov:skip=(CKV2?_[A-Z0-9]+_\d+):(.*)$", line)
                    assert m, f"{path.name}: malformed skip {line.strip()}"
                    assert len(m.group(2).strip()) >= 40, f"{path.name}: {m.group(1)} needs a real reason"
                    skips.append(m.group(1))
    assert skips, "the skips are where this test looks"
    assert len(skips) == len(set(skips)) + skips.count("CKV_DOCKER_2") - 1, skips
