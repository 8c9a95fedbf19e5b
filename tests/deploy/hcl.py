"""The Terraform module as data: every .tf file of a directory parsed with python-hcl2 and merged, with
helpers to resolve `local.` references and to walk IAM policy documents."""

import re
from pathlib import Path

import hcl2

ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "deploy" / "terraform"

_OPTS = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True, preserve_heredocs=False
)
_LOCAL_REF = re.compile(r"^\$\{local\.([A-Za-z0-9_]+)\}$")
_DOC_REF = re.compile(r"^\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_]+)\.json\}$")


class Module:
    def __init__(self, path: Path = MODULE_DIR):
        self.path = Path(path)
        self.resources, self.data, self.locals = {}, {}, {}
        self.variables, self.outputs, self.modules = {}, {}, {}
        self.terraform = []
        self.text = {}
        for f in sorted(self.path.glob("*.tf")):
            self.text[f.name] = f.read_text()
            with open(f) as fh:
                doc = hcl2.load(fh, serialization_options=_OPTS)
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for block in doc.get(kind, []):
                    for rtype, named in block.items():
                        for name, body in named.items():
                            assert (rtype, name) not in target, f"{kind} {rtype}.{name} declared twice"
                            target[(rtype, name)] = body
            for block in doc.get("locals", []):
                for k, v in block.items():
                    assert k not in self.locals, f"local.{k} declared twice"
                    self.locals[k] = v
            for kind, target in (("variable", self.variables), ("output", self.outputs), ("module", self.modules)):
                for block in doc.get(kind, []):
                    target.update(block)
            self.terraform += doc.get("terraform", [])

    # --- lookups ---------------------------------------------------------------------------------
    def resource(self, rtype, name):
        return self.resources[(rtype, name)]

    def of_type(self, rtype):
        return {name: body for (t, name), body in self.resources.items() if t == rtype}

    def resolve(self, value):
        """Follow `${local.x}` (a whole-value reference) to the local's own value, recursively."""
        while isinstance(value, str) and (m := _LOCAL_REF.match(value)):
            value = self.locals[m.group(1)]
        return value

    def policy_doc_name(self, expr):
        """The aws_iam_policy_document a policy argument comes from (None if it is anything else)."""
        m = _DOC_REF.match(expr or "")
        return m.group(1) if m else None

    def statements(self, doc_name):
        """Every statement of an aws_iam_policy_document, the `dynamic "statement"` contents included,
        with actions / resources / principals resolved through locals."""
        doc = self.data[("aws_iam_policy_document", doc_name)]
        raw = list(doc.get("statement", []))
        for dyn in doc.get("dynamic", []):
            for name, body in dyn.items():
                if name == "statement":
                    raw += body["content"]
        out = []
        for st in raw:
            st = dict(st)
            for key in ("actions", "not_actions", "resources", "not_resources"):
                if key in st:
                    st[key] = self.resolve(st[key])
            st["principals"] = [
                {"type": p["type"], "identifiers": self.resolve(p["identifiers"])} for p in st.get("principals", [])
            ]
            st.setdefault("effect", "Allow")
            out.append(st)
        return out

    def statement(self, doc_name, sid):
        found = [s for s in self.statements(doc_name) if s.get("sid") == sid]
        assert len(found) == 1, f"{doc_name}: statement {sid} not found exactly once"
        return found[0]


def one(blocks):
    """The single nested block of a block list (python-hcl2 gives nested blocks as lists)."""
    assert isinstance(blocks, list) and len(blocks) == 1, blocks
    return blocks[0]


def containers(workload):
    return one(one(one(workload["spec"])["template"])["spec"])["container"]


def pod_spec(workload):
    return one(one(one(workload["spec"])["template"])["spec"])


def env_of(container):
    """{name: value or ('secret', secret name expr, key) or ('field', path)} for a container's env blocks
    (dynamic env blocks are returned under the key '<dynamic>')."""
    env = {}
    for e in container.get("env", []):
        if "value_from" in e:
            vf = one(e["value_from"])
            if "secret_key_ref" in vf:
                ref = one(vf["secret_key_ref"])
                env[e["name"]] = ("secret", ref["name"], ref["key"])
            elif "field_ref" in vf:
                env[e["name"]] = ("field", one(vf["field_ref"])["field_path"])
        else:
            env[e["name"]] = e.get("value")
    for dyn in container.get("dynamic", []):
        if "env" in dyn:
            env["<dynamic>"] = dyn["env"]["for_each"]
    return env
