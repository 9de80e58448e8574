import sys, json, numpy as np, torch, time
sys.path.insert(0,'bench')
import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
from widefield_realism import features, params
from replearn.data import synthetic_aureus
from replearn.data.cell_augment import CellAugment
from replearn.encoders import CNNClassifier
from replearn.workflows._assignment_grid import DEFAULTS
from sklearn.model_selection import cross_val_predict, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.linear_model import LogisticRegression
torch.set_num_threads(2)
kw=params(sys.argv[1] if len(sys.argv)>1 else None, False)
seed=0
z=np.load('/tmp/cells.npz'); real=z['unlabelled']
train=synthetic_aureus(300,0,seed=seed,preset='widefield',**kw)
source=synthetic_aureus(600,0,seed=1000+seed,preset='widefield',**kw).labelled
c=DEFAULTS['cnn']
cnn=CNNClassifier(network_params={"depth":4,"width":16,"dropout":0.25,"dense":c["dense"]},epochs=c["epochs"],batch_size=c["batch_size"],lr=c["lr"],weight_decay=c["weight_decay"],schedule=c["schedule"],channels_last=True,augment=CellAugment(**DEFAULTS["augment"]),seed=seed,device="cpu").fit(train.labelled,train.labels)
fs,fr=features(cnn,source),features(cnn,real)
x=np.concatenate([fs,fr]); y=np.r_[np.zeros(len(fs)),np.ones(len(fr))]
p=cross_val_predict(make_pipeline(StandardScaler(),LogisticRegression(max_iter=2000,class_weight='balanced')),x,y,cv=StratifiedKFold(5,shuffle=True,random_state=0),method='predict_proba')[:,1]
from sklearn.metrics import roc_auc_score; print('auc',roc_auc_score(y,p))
pr,ps=p[len(fs):],p[:len(fs)]
np.savez('/tmp/extremes.npz',pr=pr,ps=ps)
rows=[('REAL, most real-looking',real[np.argsort(-pr)[:14]]),('REAL, most synthetic-looking',real[np.argsort(pr)[:14]]),
('SYNTH, most synthetic-looking',source[np.argsort(ps)[:14]]),('SYNTH, most real-looking',source[np.argsort(-ps)[:14]])]
fig,ax=plt.subplots(8,7,figsize=(9,11))
for r,(t,ims) in enumerate(rows):
    for i in range(14):
        a=ax[2*r+i//7,i%7]; a.imshow(ims[i],cmap='gray',vmin=0,vmax=255); a.set_xticks([]);a.set_yticks([])
    ax[2*r,0].set_title(t,loc='left',fontsize=9)
plt.tight_layout(); plt.savefig('bench/results/widefield-realism-session25/extremes.png',dpi=70)
