import sys, json, numpy as np
sys.path.insert(0,'bench'); sys.path.insert(0,'bench/s25_prototype')
import proto
from widefield_realism import params
from replearn.data import synthetic_aureus
from replearn.workflows._domain_stats import per_crop_statistics, statistics_classifier
real=per_crop_statistics(np.load('/tmp/cells.npz')['unlabelled'])
for arg in sys.argv[1:]:
    raw=json.loads(arg); proto.EXTRA.clear(); proto.EXTRA.update(raw.pop('x',{})); kw=params(json.dumps(raw),False)
    res=[statistics_classifier(per_crop_statistics(synthetic_aureus(600,0,seed=1000+s,preset='widefield',**kw).labelled),real,seed=s) for s in range(4)]
    lean=[next(iter(r['without'])) for r in res]
    print(f"STATS {arg}: auc {np.mean([r['auc'] for r in res]):.3f} {[round(r['auc'],3) for r in res]} leans on {lean}",flush=True)
