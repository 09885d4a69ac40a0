"""Bad input shared by the tests of the planner and of the command line (test_catalogue.py)."""

PIPELINE_MISTAKES = [
    ("pipeline.archs=[gru,rnn]", "pipeline.archs names unknown arch 'rnn'"),
    ("pipeline.tasks=[counting]", "pipeline.tasks names unknown task 'counting'"),
    ("pipeline.methods=[mas,cka2]", "pipeline.methods names unknown method 'cka2'"),
    ("pipeline.seeds=[]", "pipeline.seeds is empty"),
    ("pipeline.ks=[]", "pipeline.ks is empty"),
    ("pipeline.archs=gru", "pipeline.archs must be a list"),
    ("pipeline.fits=reference", "needs pipeline.reference"),
    ("pipeline.fits=all", "pipeline.fits must be one of joint, pairs, reference"),
    ("pipeline.reference=[mystery/gru:0]", "unknown task 'mystery'"),
    ("pipeline.ks=[200]", "k=200 is larger than the smallest site width"),
    ("pipeline.swaps=[colour]", "swap=colour is not a variable"),
    ("pipeline.jobs=0", "pipeline.jobs must be a positive integer"),
    ("pipeline.seeds=[-1]", "each seed must be an integer in 0..4294967295"),
    ('pipeline.align_overrides=["k=0"]', "k=0 is set by the pipeline per job; use pipeline.ks"),
    ('pipeline.align_overrides=["method=das"]', "use pipeline.methods"),
    (
        'pipeline.align_overrides=["budget=paper"]',
        "the pipeline's own setting; give it as mas pipeline budget=paper",
    ),
    ('pipeline.train_overrides=["arch=lstm"]', "use pipeline.archs"),
    ('pipeline.align_overrides=["nosuch=1"]', "mas align has no setting nosuch"),
    ("pipeline.tasks=[arithmetic] pipeline.methods=[similarity]", "lacks the Multi-Object stimuli"),
    ("pipeline.hypotheses=[{causal_model:up_up,swap:count,k:16}]", "swap=count is not a variable"),
    ("pipeline.hypotheses=[{causal_model:up_sideways,swap:count,k:16}]", "causal_model=up_sideways does not fit"),
    ("pipeline.hypotheses=[{swap:count}]", "needs exactly causal_model, swap and k"),
    ("pipeline.ks_by_method.stitch=[]", "pipeline.ks_by_method.stitch must be a non-empty list"),
    ("pipeline.allow_undertrained=maybe", "pipeline.allow_undertrained must be true or false"),
]

