import sys, json, time, numpy as np, torch
sys.path.insert(0,'bench'); sys.path.insert(0,'bench/s25_prototype')
import psfmix as proto
from widefield_realism import features, params, real_stages, STAGES
from replearn.data import synthetic_aureus
from replearn.data.cell_augment import CellAugment
from replearn.encoders import CNNClassifier
from replearn.evaluate.domain_shift import domain_classifier_score
from replearn.workflows._assignment_grid import DEFAULTS
torch.set_num_threads(2)
raw = json.loads(sys.argv[1]); proto.EXTRA.update(raw.pop("x", {}))
kw = params(json.dumps(raw), False); seeds = [int(s) for s in sys.argv[2].split(",")]
real = np.load('/tmp/cells.npz')['unlabelled']; labels = real_stages(STAGES, len(real))
aucs, accs = [], []
for seed in seeds:
    t=time.time()
    train = synthetic_aureus(300, 0, seed=seed, preset='widefield', **kw)
    source = synthetic_aureus(600, 0, seed=1000+seed, preset='widefield', **kw).labelled
    c = DEFAULTS['cnn']
    cnn = CNNClassifier(network_params={"depth":4,"width":16,"dropout":0.25,"dense":c["dense"]}, epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"], weight_decay=c["weight_decay"], schedule=c["schedule"], channels_last=True, augment=CellAugment(**DEFAULTS["augment"]), seed=seed, device="cpu").fit(train.labelled, train.labels)
    aucs.append(domain_classifier_score(features(cnn, source), features(cnn, real), seed=seed)["auc"])
    accs.append(float(np.mean(cnn.predict(real) == labels)))
    print(f"  seed {seed}: auc {aucs[-1]:.3f} real acc {accs[-1]:.3f} ({time.time()-t:.0f}s)", flush=True)
print(f"RESULT {sys.argv[1]} seeds {seeds}: auc {np.mean(aucs):.3f} {np.round(aucs,3).tolist()} real acc {np.mean(accs):.3f}", flush=True)
