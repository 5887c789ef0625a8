rule thresholds:
    input:
        curves=curve_paths(),
    output:
        csv="results/thresholds.csv",
    params:
        threshold=config["threshold"],
    log:
        "logs/thresholds.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow/scripts/thresholds.py"


rule trend:
    input:
        thresholds=rules.thresholds.output.csv,
    output:
        json="results/trend.json",
        figure="results/figures/efficiency.png",
    params:
        published=publication_dates(),
        analysis=config["analysis"],
        threshold=config["threshold"],
    log:
        "logs/trend.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow/scripts/trend.py"


rule plot_learning_curves:
    input:
        curves=curve_paths(),
    output:
        figure="results/figures/learning_curves.png",
    params:
        threshold=config["threshold"],
    log:
        "logs/plot_learning_curves.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow/scripts/plot_learning_curves.py"
