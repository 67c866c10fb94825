"""Package mapping: DESIGN.md's operator/ and jobs/ folders import as smepulse.operator and
smepulse.jobs (a bare `operator` package would shadow the standard library's)."""

from setuptools import find_packages, setup

ROOTS = {"smepulse.jobs": "jobs", "smepulse.operator": "operator"}

packages: list[str] = []
for name, folder in ROOTS.items():
    packages.append(name)
    packages.extend(f"{name}.{sub}" for sub in find_packages(folder))

setup(
    packages=packages,
    package_dir=ROOTS,
    package_data={
        "smepulse.jobs": ["py.typed", "**/*.json", "**/*.yaml", "**/*.html", "**/*.j2"],
        "smepulse.operator": ["py.typed"],
    },
    include_package_data=True,
)
