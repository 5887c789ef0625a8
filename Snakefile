import os

from snakemake.utils import min_version

min_version("9.0")


# the bundled default, found from any working directory (--directory); --configfile overrides it
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/analysis.smk"


rule all:
    default_target: True
    input:
        get_final_output,


# every successful run (not a dry run; Snakemake's job processes run no hooks) ends with the headline
onsuccess:
    print_headline()
