#!/usr/bin/python3
"""Self-checks of the PyTorch fixture writer (run: /usr/bin/python3 tools/pytorch/selftest.py).

Checks the forward definitions in layers.py against independent formulations, and autograd against central
finite differences of the objective, for every case in write_fixtures.CASES:
  * sigma = ndtri(1 - topk/E) matches the constants of docs/spec.md §1.3
  * BatchNorm (batch stats, biased variance, unbiased running_var) matches torch.nn.BatchNorm1d, for PEER's
    per-feature BN and Monet's per-head BN over (tokens x experts)
  * SMoE top-k-then-softmax equals HF Mixtral's softmax-all -> top-k -> renormalise
  * Monet HD / VD einsums equal the explicit per-expert sums of docs/spec.md §1.4 / §1.5 (expert view, gate g_ij)
  * PEER product-key retrieval equals a brute-force top-k over all N = nk^2 keys (exact by construction)
  * causal GQA attention equals a per-head loop with explicit causal softmax
  * autograd gradients of each case's objective equal central differences at sampled coordinates
  * two writes of the same case give identical bytes
"""

import math
import os
import sys
import tempfile

import torch
import torch.nn.functional as Fn

sys.dont_write_bytecode = True  # no __pycache__ beside the committed sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import layers as Lyr  # noqa: E402
import write_fixtures as W  # noqa: E402

torch.set_num_threads(1)
F64 = torch.float64
fails = []


def case(kind, name):
    return next(c for c in W.CASES if c[0] == kind and c[1] == name)


def check(name, ok, detail=''):
    print(('ok   ' if ok else 'FAIL ') + name + (f'  {detail}' if detail else ''))
    if not ok:
        fails.append(name)


def close(a, b, tol=1e-12):
    err = (a - b).abs().max().item()
    scale = max(b.abs().max().item(), 1.0)
    return err <= tol * scale, f'max err {err:.3g}'


# sigma
for (k, E), want in [((8, 512), 2.1538746940614564), ((32, 512), 1.5341205443525463), ((8, 64), 1.1503493803760079),
                     ((2, 16), 1.1503493803760079)]:
    got = Lyr.monet_sigma(k, E)
    check(f'sigma {k}/{E}', got == want, f'{got!r} vs {want!r}')

g = torch.Generator().manual_seed(7)

# BatchNorm vs torch.nn.BatchNorm1d
x = torch.randn(10, 6, generator=g, dtype=F64)
bn = torch.nn.BatchNorm1d(6, eps=1e-5, momentum=0.1).double()
rm0, rv0 = torch.randn(6, generator=g, dtype=F64) * 0.1, torch.rand(6, generator=g, dtype=F64) + 0.5
bn.running_mean.copy_(rm0)
bn.running_var.copy_(rv0)
bn.train()
want = bn(x)
got, nm, nv = Lyr.batchnorm_train(x, (0,), 1e-5, 0.1, rm0, rv0)
check('peer BN normalise', *close(got, want))
check('peer BN running_mean', *close(nm, bn.running_mean))
check('peer BN running_var', *close(nv, bn.running_var))
T, H, E = 5, 3, 4
z = torch.randn(T, H, E, generator=g, dtype=F64)
bn = torch.nn.BatchNorm1d(H, affine=False).double()
bn.train()
want = bn(z.transpose(1, 2).reshape(T * E, H)).reshape(T, E, H).transpose(1, 2)
got, nm, nv = Lyr.batchnorm_train(z, (0, 2), 1e-5, 0.1, torch.zeros(1, H, 1, dtype=F64), torch.ones(1, H, 1, dtype=F64))
check('monet BN normalise', *close(got, want))
check('monet BN running stats', *close(torch.cat([nm.reshape(H), nv.reshape(H)]),
                                       torch.cat([bn.running_mean, bn.running_var])))

# SMoE routing vs HF Mixtral formulation
cfg = dict(case('smoe', 'swiglu_e4k2')[3])
D = W.Draw(3)
ins, p, _ = W.draw_smoe(D, cfg)
y, lb, lz, sel, _ = Lyr.smoe(ins['x'], p, cfg)
logits = ins['x'] @ p['gate.weight'].T
probs = torch.softmax(logits, -1)
wts, sel2 = torch.topk(probs, cfg['top_k'], dim=-1)
wts = wts / wts.sum(-1, keepdim=True)
y2 = torch.zeros_like(y)
for t in range(ins['x'].shape[0]):
    for s in range(cfg['top_k']):
        y2[t] += wts[t, s] * Lyr.smoe_expert(ins['x'][t:t + 1], p, sel2[t, s].item(), cfg['activation'])[0]
check('smoe == HF Mixtral routing', *close(y, y2))
check('smoe idx == torch.topk', bool((sel == sel2).all()))
f = torch.zeros(cfg['num_experts'], dtype=F64)
for e in sel.flatten().tolist():
    f[e] += 1
f /= sel.numel()
check('smoe balance loss', *close(lb, cfg['num_experts'] * (f * probs.mean(0)).sum()))

# Monet HD / VD vs the expert view
for dec, kn in (('horizontal', 'monet-hd'), ('vertical', 'monet-vd')):
    kind, name, seed, cfg, _ = case(kn, 'train')
    ins, p, s = W.KINDS[kind][0](W.Draw(seed), cfg)
    x = ins['x']
    g1, g2, m1, m2, _, _ = Lyr.monet_router(x, p, s, cfg, prefix='router.')
    E, H, m = cfg['moe_experts'], cfg['moe_heads'], cfg['moe_dim']
    relu2 = lambda v: torch.relu(v) ** 2  # noqa: E731
    gij = torch.einsum('thi,thj->tij', g1, g2)  # composite gate, sums to H
    want = torch.zeros(x.shape[0], cfg['hidden_size'], dtype=F64)
    if dec == 'horizontal':
        got = Lyr.monet_hd(x, p, g1, g2, m)
        Uw, Ub, Vw, b = p['moe.u.weight'], p['moe.u.bias'], p['moe.v.weight'], p['moe.b']
        for i in range(E):
            for j in range(E):
                Eij = relu2(x @ Uw[i * m:(i + 1) * m].T + Ub[i * m:(i + 1) * m]) @ Vw[:, j * m:(j + 1) * m].T + b[j]
                want += gij[:, i, j, None] * Eij
    else:
        got = Lyr.monet_vd(x, p, g1, g2, m)
        mh = m // 2
        sl = lambda i: slice(i * mh, (i + 1) * mh)  # noqa: E731
        for i in range(E):
            for j in range(E):
                s1 = relu2(x @ p['moe.u1.weight'][sl(i)].T + p['moe.u1.bias'][sl(i)])
                s2 = relu2(x @ p['moe.u2.weight'][sl(j)].T + p['moe.u2.bias'][sl(j)])
                top = s1 @ p['moe.v11.weight'][:, sl(i)].T + s2 @ p['moe.v12.weight'][:, sl(i)].T + p['moe.b1'][i]
                bot = s1 @ p['moe.v21.weight'][:, sl(j)].T + s2 @ p['moe.v22.weight'][:, sl(j)].T + p['moe.b2'][j]
                want += gij[:, i, j, None] * torch.cat([top, bot], -1)
    check(f'monet {dec} == expert view', *close(got, want))
    check(f'monet {dec} g rows sum to 1', *close(g1.sum(-1), torch.ones_like(g1.sum(-1))))
    check(f'monet {dec} masked g == 0', bool((g1[~m1] == 0).all() and (g2[~m2] == 0).all()))

# PEER product keys vs brute force over all N keys
for cname in ('train_relu', 'eval_gelu', 'train_gelu_n64_h3k3'):
    kind, name, seed, cfg, _ = case('peer', cname)
    ins, p, s = W.draw_peer(W.Draw(seed), cfg)
    x = ins['x']
    y, experts, _, _ = Lyr.peer(x, p, s, cfg)
    H, k, dk, N = cfg['heads'], cfg['top_k'], cfg['key_dim'], cfg['num_experts']
    nk = math.isqrt(N)
    q = x @ p['query.weight'].T + p['query.bias']
    bn = torch.nn.BatchNorm1d(H * dk).double()
    with torch.no_grad():
        bn.weight.copy_(p['query_bn.weight'])
        bn.bias.copy_(p['query_bn.bias'])
        bn.running_mean.copy_(s['query_bn.running_mean'])
        bn.running_var.copy_(s['query_bn.running_var'])
    bn.train(cfg['mode'] == 'train')
    qn = bn(q).view(-1, H, dk)
    full = torch.cat([p['sub_keys'][0].repeat_interleave(nk, 0), p['sub_keys'][1].repeat(nk, 1)], -1)  # (N, dk)
    scores = qn @ full.T  # (T, H, N), key id a*nk+b
    sc, ids = torch.topk(scores, k, dim=-1)
    y2 = torch.zeros_like(y)
    act = Lyr.act_fn(cfg['activation'])
    w = torch.softmax(sc, -1)
    for t in range(x.shape[0]):
        for h in range(H):
            for r in range(k):
                e = ids[t, h, r]
                y2[t] += w[t, h, r] * act(x[t] @ p['w_down'][e]) * p['w_up'][e]
    check(f'peer {name} == brute force', *close(y, y2))
    check(f'peer {name} ids == brute-force topk', bool((experts == ids).all()))

# attention vs per-head loop
cfg = W.lm_cfg('dense', intermediate_size=8, activation='swiglu')
ins, p, _ = W.draw_lm(W.Draw(11), cfg)
xa = torch.randn(2, 6, 8, generator=g, dtype=F64)
pre = 'model.layers.0.'
got = Lyr.attention(xa, p, pre, cfg)
nH, nKV, hd = 2, 1, 4
want = torch.zeros(2, 6, nH * hd, dtype=F64)
pos = torch.arange(6, dtype=F64)
for b in range(2):
    for h in range(nH):
        kvh = h // (nH // nKV)
        qh = xa[b] @ p[pre + 'self_attn.q_proj.weight'][h * hd:(h + 1) * hd].T
        kh = xa[b] @ p[pre + 'self_attn.k_proj.weight'][kvh * hd:(kvh + 1) * hd].T
        vh = xa[b] @ p[pre + 'self_attn.v_proj.weight'][kvh * hd:(kvh + 1) * hd].T

        def rot(v):
            out = v.clone()
            for i in range(hd // 2):
                ang = pos * 10000.0 ** (-2 * i / hd)
                a_, b_ = v[:, i], v[:, i + hd // 2]
                out[:, i] = a_ * ang.cos() - b_ * ang.sin()
                out[:, i + hd // 2] = b_ * ang.cos() + a_ * ang.sin()
            return out
        qh, kh = rot(qh), rot(kh)
        for t in range(6):
            sc = (kh[:t + 1] @ qh[t]) / math.sqrt(hd)
            want[b, t, h * hd:(h + 1) * hd] = torch.softmax(sc, 0) @ vh[:t + 1]
want = want @ p[pre + 'self_attn.o_proj.weight'].T
check('attention == per-head loop', *close(got, want))

# autograd vs central differences, every case
for kind, name, seed, cfg, opts in W.CASES:
    ins, p, s, outs, idx, nxt, grads, mm, _ = W.build_case(kind, cfg, seed, opts)
    fwd = W.KINDS[kind][1]
    leaves = {('in.' + k): v for k, v in ins.items() if 'grad.in.' + k in grads}  # every input gradient written
    leaves.update({('param.' + k): v for k, v in p.items()})
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for lname, leaf in leaves.items():
        gr = grads['grad.' + lname].flatten()
        flat = leaf.detach().view(-1)
        for j in torch.randperm(flat.numel(), generator=gen)[:3].tolist():
            h = 1e-6 * max(1.0, abs(flat[j].item()))
            with torch.no_grad():
                old = flat[j].item()
                flat[j] = old + h
                Lp = fwd(cfg, ins, p, s)[4].item()
                flat[j] = old - h
                Lm = fwd(cfg, ins, p, s)[4].item()
                flat[j] = old
            fd = (Lp - Lm) / (2 * h)
            err = abs(fd - gr[j].item()) / max(1.0, abs(fd))
            worst = max(worst, err)
    check(f'finite differences {kind}/{name}', worst < 1e-6, f'worst rel err {worst:.2g}')

# byte-identical rewrite
with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
    for kind, name, seed, cfg, opts in W.CASES[::4]:
        a = W.write_case(d1, kind, name, seed, cfg, opts)[0]
        b = W.write_case(d2, kind, name, seed, cfg, opts)[0]
        with open(a, 'rb') as fa, open(b, 'rb') as fb:
            check(f'deterministic {kind}/{name}', fa.read() == fb.read())

print('FAILED: ' + ', '.join(fails) if fails else 'all self-checks passed')
sys.exit(1 if fails else 0)
