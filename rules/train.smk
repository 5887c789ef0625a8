rule count_flops:
    output:
        "results/flops/{model}.json",
    params:
        spec=model_spec,
    log:
        "logs/count_flops/{model}.log",
    conda:
        "../envs/training.yaml"
    script:
        "../workflow/scripts/count_flops.py"


rule train:
    input:
        train=rules.prepare_data.output.train,
        val=rules.prepare_data.output.val,
        manifest=rules.prepare_data.output.manifest,
        flops=rules.count_flops.output[0],
    output:
        curve="results/curves/{model}/seed{seed}.parquet",
    params:
        spec=model_spec,
        training=training_settings,
    log:
        "logs/train/{model}/seed{seed}.log",
    threads: 2
    conda:
        "../envs/training.yaml"
    script:
        "../workflow/scripts/train.py"
