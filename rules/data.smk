rule prepare_data:
    output:
        train="results/data/train.beton",
        val="results/data/val.beton",
        manifest="results/data/manifest.json",
    params:
        dataset=config["dataset"],
    log:
        "logs/prepare_data.log",
    threads: 4
    conda:
        "../envs/training.yaml"
    script:
        "../workflow/scripts/prepare_data.py"
