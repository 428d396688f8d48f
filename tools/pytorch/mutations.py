#!/usr/bin/python3
"""Do the PyTorch fixtures catch plausible misreadings of the spec?  (/usr/bin/python3 tools/pytorch/mutations.py)

Each mutation is a one-spot edit of layers.py that encodes a mistake an implementation could plausibly make (an
alternative reading of the spec, a wrong index layout, a wrong normalisation). For each, the named cases are rebuilt
with the mutated forward (same draws, same autograd) and compared with the committed fixture under the checker's
float64 preset, |a - e| <= 1e-10 + 1e-9 |e| (idx.* exactly). A mutation must be caught by at least one case,
i.e. some out.* / grad.* / idx.* / next.* tensor must fall outside tolerance; a mutation nobody catches would mean
the fixture set cannot tell the two readings apart.
"""

import os
import sys
import types

import numpy as np

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st  # noqa: E402
import write_fixtures as W  # noqa: E402

W.torch.set_num_threads(1)
FIXTURES = os.path.join(HERE, '..', '..', 'fixtures', 'external', 'pytorch')

# (what, [(old, new) edits of layers.py], [kind/case that must catch it])
MUTATIONS = [
    ('SMoE: f normalised by T instead of T*k', [('f = counts / (T * k)', 'f = counts / T')],
     ['smoe/swiglu_e4k2', 'lm/smoe']),
    ('SMoE: softmax over all experts, then top-k, not renormalised',
     [('w = torch.softmax(torch.gather(z, 1, sel), dim=-1)', 'w = torch.gather(torch.softmax(z, -1), 1, sel)')],
     ['smoe/swiglu_e4k2']),
    ('SMoE: z-loss without the square',
     [('(torch.logsumexp(z, dim=-1) ** 2).mean()', 'torch.logsumexp(z, dim=-1).mean()')],
     ['smoe/swiglu_e4k2']),
    ('TopK: mask ignored in the (1 - alpha) path (dense ReLU)',
     [('(1 - alpha) * r * mask.to(z.dtype)', '(1 - alpha) * r')],
     ['topk/alpha0.4', 'topk-ffn/alpha0', 'lm/topk_ffn', 'lm/topk_hidden']),
    ('BatchNorm: running_var stores the biased variance', [(' * n / (n - 1)', '')],
     ['peer/train_relu', 'monet-router/train']),
    ('BatchNorm: momentum applied the other way round',
     [('(1 - momentum) * running_mean + momentum * mu', 'momentum * running_mean + (1 - momentum) * mu')],
     ['peer/train_relu', 'monet-router/train']),
    ('PEER: expert id b*sqrt(N) + a (column-major product keys)',
     [('(A[..., :, None] * nk + Bi[..., None, :])', '(Bi[..., None, :] * nk + A[..., :, None])')],
     ['peer/train_relu', 'peer/eval_gelu', 'lm/peer']),
    ('PEER: w_down and w_up swapped', [("U = p['w_down'][experts]", "U = p['w_up'][experts]"),
                                       ("Vv = p['w_up'][experts]", "Vv = p['w_down'][experts]")],
     ['peer/train_relu']),
    ('PEER: q halves interleaved across heads (q1 = first half of the whole query)',
     [('qn = qn.view(T, H, dk)\n    q1, q2 = qn[..., :dk // 2], qn[..., dk // 2:]',
       'qn = qn.view(T, 2, H, dk // 2).transpose(1, 2)\n    q1, q2 = qn[..., 0, :], qn[..., 1, :]')],
     ['peer/train_relu']),
    ('Monet router: softmax over all experts (mask ignored)', [('z.masked_fill(~M, -math.inf)', 'z')],
     ['monet-router/train']),
    ('Monet router: expert-major unflatten (E, H) instead of (H, E)',
     [(".T).view(T, H, E)  # head-major unflatten", ".T).view(T, E, H).transpose(1, 2)")],
     ['monet-router/train']),
    ('Monet HD: bias mixed with g1 instead of g2',
     [("torch.einsum('thj,jd->td', g2, p[f'{prefix}b'])", "torch.einsum('thj,jd->td', g1, p[f'{prefix}b'])")],
     ['monet-hd/train']),
    ('Monet VD: crossflow h12 indexed by j', [("h12 = torch.einsum('tjm,thj,thi->tim', a2, g2, g1)",
                                              "h12 = torch.einsum('tjm,thj,thi->tjm', a2, g2, g1)")],
     ['monet-vd/train']),
    ('Monet VD: b1 weighted by G2', [("torch.einsum('thi,id->td', g1, p[f'{prefix}b1'])",
                                      "torch.einsum('thi,id->td', g2, p[f'{prefix}b1'])")],
     ['monet-vd/train']),
    ('Monet aux: L_amb summed (not averaged) over tokens',
     [('amb = amb + (1 - g.max(dim=-1).values).mean(0).sum() / (2 * H)',
       'amb = amb + (1 - g.max(dim=-1).values).sum(0).sum() / (2 * H)')],
     ['monet-hd/train']),
    ('Monet aux: L_unif of per-token g (no batch mean before the log)',
     [('unif = unif - torch.log(gbar + unif_eps).sum() / (2 * H * E)',
       'unif = unif - torch.log(g + unif_eps).mean(0).sum() / (2 * H * E)')],
     ['monet-hd/train']),
    ('LM Monet: aux losses averaged over layers instead of routers',
     [("            mp = strip(p, pre + 'moe.')\n            if cfg['moe_decompose']",
       "            if i % cfg['moe_groups'] != 0:\n"
       "                un, am = monet_aux(g1, g2, cfg['unif_eps'])\n"
       "                aux['loss_unif'].append(un)\n"
       "                aux['loss_amb'].append(am)\n"
       "            mp = strip(p, pre + 'moe.')\n            if cfg['moe_decompose']")],
     ['lm/monet_hd', 'lm/monet_vd']),
    ('LM: RoPE interleaved pairs (GPT-J) instead of rotate-half',
     [('emb = torch.cat([freqs, freqs], dim=-1)', 'emb = freqs.repeat_interleave(2, dim=-1)'),
      ('torch.cat([-x2, x1], dim=-1) * sin', 'torch.stack([-x[..., 1::2], x[..., ::2]], -1).flatten(-2) * sin')],
     ['lm/dense_swiglu_gqa']),
    ('LM: GQA head h reads kv head h % nKV',
     [('k = k.repeat_interleave(nH // nKV, dim=1)', 'k = k.repeat(1, nH // nKV, 1, 1)'),
      ('v = v.repeat_interleave(nH // nKV, dim=1)', 'v = v.repeat(1, nH // nKV, 1, 1)')],
     ['lm/dense_swiglu_gqa']),
    ('LM: RMSNorm eps outside the square root',
     [('x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w',
       'x / (torch.sqrt((x * x).mean(-1, keepdim=True)) + eps) * w')],
     ['lm/dense_swiglu_gqa']),
    ('LM TopK hidden: TopK on the FFN output before the residual add',
     [("        h = h + f.view(B, S, d)\n        if topk_layer and cfg['topk_placement'] == 'hidden':\n"
       "            h, _, mg = topk_act(h, cfg['k'], cfg['alpha'])",
       "        if topk_layer and cfg['topk_placement'] == 'hidden':\n"
       "            f, _, mg = topk_act(f.view(B, S, d), cfg['k'], cfg['alpha'])\n        h = h + f.view(B, S, d)\n"
       "        if False:\n            pass")],
     ['lm/topk_hidden']),
]


def mutated_layers(edits):
    with open(os.path.join(HERE, 'layers.py')) as f:
        src = f.read()
    for old, new in edits:
        if src.count(old) != 1:
            raise SystemExit(f'mutation edit not found exactly once in layers.py: {old!r}')
        src = src.replace(old, new)
    mod = types.ModuleType('layers_mutated')
    exec(compile(src, 'layers_mutated.py', 'exec'), mod.__dict__)
    return mod


def caught(kind, name, mod):
    """True when the mutated forward disagrees with the committed fixture beyond the f64 preset."""
    case = next(c for c in W.CASES if c[0] == kind and c[1] == name)
    _, expected = st.read(os.path.join(FIXTURES, kind, name + '.safetensors'))
    orig = W.Lyr
    W.Lyr = mod
    try:
        ins, p, s, outs, idx, nxt, grads, _, _ = W.build_case(kind, case[3], case[2], case[4])
    except Exception as e:  # a mutation that breaks the shapes is caught too
        return True, f'raises {type(e).__name__}'
    finally:
        W.Lyr = orig
    got = {('out.' + k): v for k, v in outs.items()}
    got.update(grads)
    got.update({('idx.' + k): v for k, v in idx.items()})
    got.update({('next.' + k): v for k, v in nxt.items()})
    got.pop('out.logits', None)  # optional in the contract: a mutation must be caught by a tensor every backend gives
    for k, v in got.items():
        a = v.detach().numpy().astype(np.float64).reshape(-1)
        e = expected[k][1].astype(np.float64).reshape(-1)
        if k.startswith('idx.'):
            if not np.array_equal(a, e):
                return True, k
        elif not np.all(np.abs(a - e) <= 1e-10 + 1e-9 * np.abs(e)):
            return True, k
    return False, ''


def main():
    missed = []
    for what, edits, cases in MUTATIONS:
        mod = mutated_layers(edits)
        hits = []
        for kc in cases:
            kind, name = kc.split('/')
            ok, where = caught(kind, name, mod)
            hits.append(f'{kc}: {"caught by " + where if ok else "NOT caught"}')
            if not ok:
                missed.append(f'{what} [{kc}]')
        print(f'{what}\n    ' + '\n    '.join(hits))
    print('every mutation caught by every listed case' if not missed else 'MISSED: ' + '; '.join(missed))
    sys.exit(1 if missed else 0)


if __name__ == '__main__':
    main()
