"""Forward definitions of every fixture kind, in PyTorch float64.

Written from the layer definitions (docs/spec.md) and the agreed names (docs/fixtures.md), independently of the
project's TypeScript reference. Only forward passes live here: every gradient in a fixture comes from torch.autograd.

Dimension legend
  T  tokens (all sequences flattened)     d  hidden size            F  intermediate size
  E  experts (SMoE) or sqrt(N) (Monet)    k  top-k                  H  heads (PEER / Monet routing heads)
  N  PEER experts (nk = sqrt(N) sub-keys per side)                  dk PEER key dim (per head)
  m  Monet expert dim (moe_dim)           B, S  batch, sequence     V  vocabulary

Every routing function also returns `margins`: a list of 0-d tensors, each the smallest relative margin of one
family of discrete decisions (see rel_gap). The fixture writer redraws inputs until min(margins) >= 1e-3.
"""

import math

import torch
import torch.nn.functional as Fn


# ----------------------------------------------------------------------------------------------------------------
# helpers

def act_fn(name):
    if name == 'relu':
        return torch.relu
    if name == 'relu2':
        return lambda z: torch.relu(z) ** 2
    if name == 'gelu':
        return lambda z: Fn.gelu(z)  # erf form (PyTorch default)
    if name == 'silu':
        return Fn.silu
    raise ValueError(f'activation: expected relu, relu2, gelu or silu, found {name!r}')


def rel_gap(a, b):
    """Relative margin between two scores: |a - b| / max(|a|, |b|) (elementwise, detached)."""
    a = a.detach()
    b = b.detach()
    den = torch.maximum(a.abs(), b.abs()).clamp_min(1e-300)
    return (a - b).abs() / den


def sort_desc(x):
    """Sort the last axis descending, ties to the lower index (stable sort of -x)."""
    vals, order = torch.sort(-x.detach(), dim=-1, stable=True)
    return -vals, order


def topk_margin(sorted_vals, k, ordered):
    """Margin of a top-k over sorted (descending) scores.

    The boundary pair (k-th vs (k+1)-th) decides the selected set; if `ordered`, the order inside the selection is
    part of the result too (idx lists are compared exactly), so every adjacent pair up to the boundary counts.
    """
    n = sorted_vals.shape[-1]
    first = 0 if ordered else k - 1
    last = min(k, n - 1)  # pairs (i, i+1) for i in [first, last)
    if last <= first:
        return torch.tensor(math.inf, dtype=torch.float64)
    gaps = rel_gap(sorted_vals[..., first:last], sorted_vals[..., first + 1:last + 1])
    return gaps.min()


# ----------------------------------------------------------------------------------------------------------------
# dense FFN (Llama MLP): swiglu y = down(silu(gate x) * up x); otherwise y = down(act(up x))

def dense_ffn(x, p, activation):
    if activation == 'swiglu':
        return (Fn.silu(x @ p['gate_proj.weight'].T) * (x @ p['up_proj.weight'].T)) @ p['down_proj.weight'].T
    return act_fn(activation)(x @ p['up_proj.weight'].T) @ p['down_proj.weight'].T


# ----------------------------------------------------------------------------------------------------------------
# SMoE (docs/spec.md §3.4): z = W_g x; S = top-k (ties -> lower index); w = softmax(z[S]); y = sum_s w_s E_s(x)
#   L_bal = E * sum_i f_i P_i, f_i = count_i / (T k), P_i = mean_t softmax(z_t)_i;  L_z = mean_t lse(z_t)^2

def smoe_expert(x, p, e, activation):
    w1 = p[f'experts.{e}.w1.weight']  # (F, d)
    w2 = p[f'experts.{e}.w2.weight']  # (d, F)
    if activation == 'swiglu':
        return (Fn.silu(x @ w1.T) * (x @ p[f'experts.{e}.w3.weight'].T)) @ w2.T
    return act_fn(activation)(x @ w1.T) @ w2.T


def smoe(x, p, cfg):
    T = x.shape[0]
    E, k = cfg['num_experts'], cfg['top_k']
    z = x @ p['gate.weight'].T  # (T, E)
    zs, order = sort_desc(z)
    sel = order[:, :k]  # (T, k) descending score
    w = torch.softmax(torch.gather(z, 1, sel), dim=-1)  # (T, k)
    outs = torch.stack([smoe_expert(x, p, e, cfg['activation']) for e in range(E)])  # (E, T, d)
    rows = torch.arange(T)
    y = sum(w[:, s:s + 1] * outs[sel[:, s], rows] for s in range(k))  # (T, d)
    counts = Fn.one_hot(sel, E).sum(dim=(0, 1)).to(torch.float64)  # (E,) no gradient
    f = counts / (T * k)
    P = torch.softmax(z, dim=-1).mean(0)
    loss_balance = E * (f * P).sum()
    loss_z = (torch.logsumexp(z, dim=-1) ** 2).mean()
    margins = [topk_margin(zs, k, ordered=True)]
    return y, loss_balance, loss_z, sel, margins


# ----------------------------------------------------------------------------------------------------------------
# TopK activation (docs/spec.md §4.3): y = a relu(z) + (1 - a) relu(z) * 1{z >= tau_k(z)} over the last axis

def topk_act(z, k, alpha):
    zs, _ = sort_desc(z)
    tau = zs[..., k - 1:k]
    mask = z.detach() >= tau
    r = torch.relu(z)
    y = alpha * r + (1 - alpha) * r * mask.to(z.dtype)
    return y, mask, [topk_margin(zs, k, ordered=False)]


def topk_ffn(x, p, k, alpha):
    h, mask, margins = topk_act(x @ p['up_proj.weight'].T, k, alpha)
    return h @ p['down_proj.weight'].T, mask, margins


# ----------------------------------------------------------------------------------------------------------------
# PEER (docs/spec.md §2.2): query BN (affine), shared product keys, three top-k stages (ties -> lower index / lower id)

def batchnorm_train(z, dims, eps, momentum, running_mean, running_var):
    """PyTorch BatchNorm semantics: normalise with the biased batch variance; running_var gets the unbiased one."""
    mu = z.mean(dim=dims, keepdim=True)
    var = ((z - mu) ** 2).mean(dim=dims, keepdim=True)
    n = 1
    for dd in dims:
        n *= z.shape[dd]
    zn = (z - mu) / torch.sqrt(var + eps)
    with torch.no_grad():
        new_mean = (1 - momentum) * running_mean + momentum * mu.reshape(running_mean.shape)
        new_var = (1 - momentum) * running_var + momentum * var.reshape(running_var.shape) * n / (n - 1)
    return zn, new_mean, new_var


def peer(x, p, st, cfg):
    T, d = x.shape
    H, k, dk = cfg['heads'], cfg['top_k'], cfg['key_dim']
    nk = math.isqrt(cfg['num_experts'])
    q = x @ p['query.weight'].T + p['query.bias']  # (T, H*dk)
    rm, rv = st['query_bn.running_mean'], st['query_bn.running_var']
    nxt = {}
    if cfg['mode'] == 'train':
        qn, nm, nv = batchnorm_train(q, (0,), cfg['bn_eps'], cfg['bn_momentum'], rm, rv)
        nxt = {'query_bn.running_mean': nm, 'query_bn.running_var': nv}
    else:
        qn = (q - rm) / torch.sqrt(rv + cfg['bn_eps'])
    qn = qn * p['query_bn.weight'] + p['query_bn.bias']
    qn = qn.view(T, H, dk)
    q1, q2 = qn[..., :dk // 2], qn[..., dk // 2:]  # (T, H, dk/2)
    s1 = q1 @ p['sub_keys'][0].T  # (T, H, nk) shared keys for every head
    s2 = q2 @ p['sub_keys'][1].T
    s1s, o1 = sort_desc(s1)
    s2s, o2 = sort_desc(s2)
    A, Bi = o1[..., :k], o2[..., :k]  # (T, H, k)
    cand = torch.gather(s1, 2, A)[..., :, None] + torch.gather(s2, 2, Bi)[..., None, :]  # (T, H, k, k)
    ids = (A[..., :, None] * nk + Bi[..., None, :]).reshape(T, H, k * k)
    cand = cand.reshape(T, H, k * k)
    # final top-k over the k^2 candidates: descending score, ties -> lower expert id (sort by id, then stable by -score)
    by_id = torch.argsort(ids, dim=-1)
    cs = torch.gather(cand.detach(), 2, by_id)
    _, o3 = torch.sort(-cs, dim=-1, stable=True)
    pos = torch.gather(by_id, 2, o3)  # candidate positions in final order
    pos_k = pos[..., :k]
    experts = torch.gather(ids, 2, pos_k)  # (T, H, k)
    sc = torch.gather(cand, 2, pos_k)  # (T, H, k) with gradient
    w = torch.softmax(sc, dim=-1)
    U = p['w_down'][experts]  # (T, H, k, d)
    Vv = p['w_up'][experts]
    hpre = torch.einsum('td,thkd->thk', x, U)
    a = act_fn(cfg['activation'])(hpre) * w
    y = torch.einsum('thk,thkd->td', a, Vv)
    cand_sorted = torch.gather(cand.detach(), 2, pos)
    margins = [topk_margin(s1s, k, ordered=False), topk_margin(s2s, k, ordered=False),
               topk_margin(cand_sorted, k, ordered=True)]
    return y, experts, nxt, margins


# ----------------------------------------------------------------------------------------------------------------
# Monet router (docs/spec.md §1.3): z_r = w_r x viewed (T, H, E); BN per head over (t, i), affine-free;
# sigma = Phi^-1(1 - topk/E); s = min(max_i n, sigma); M = n >= s; g = softmax over M of the RAW logits z

def monet_sigma(topk, E):
    return torch.special.ndtri(torch.tensor(1.0 - topk / E, dtype=torch.float64)).item()


def monet_router(x, p, st, cfg, prefix='', amb_margin=False):
    """Returns g1, g2 (T, H, E), masks, next-state dict and margins. `prefix` is '' or 'router.'."""
    T = x.shape[0]
    H, E = cfg['moe_heads'], cfg['moe_experts']
    sigma = monet_sigma(cfg['moe_topk'], E)
    gs, masks, nxt, margins = [], [], {}, []
    for r in (1, 2):
        z = (x @ p[f'{prefix}w{r}.weight'].T).view(T, H, E)  # head-major unflatten
        rm = st[f'{prefix}norm{r}.running_mean']
        rv = st[f'{prefix}norm{r}.running_var']
        with torch.no_grad():
            if cfg['mode'] == 'train':
                n, nm, nv = batchnorm_train(z.detach(), (0, 2), cfg['bn_eps'], cfg['bn_momentum'],
                                            rm.view(1, H, 1), rv.view(1, H, 1))
                nxt[f'{prefix}norm{r}.running_mean'] = nm.reshape(H)
                nxt[f'{prefix}norm{r}.running_var'] = nv.reshape(H)
            else:
                n = (z - rm.view(1, H, 1)) / torch.sqrt(rv.view(1, H, 1) + cfg['bn_eps'])
            s = n.amax(dim=-1, keepdim=True).clamp_max(sigma)
            M = n >= s
        g = torch.softmax(z.masked_fill(~M, -math.inf), dim=-1)
        gs.append(g)
        masks.append(M)
        # every BN-normalised logit against sigma (decides both the mask and the clamp) ...
        margins.append(rel_gap(n, torch.full_like(n, sigma)).min())
        # ... and where the max is below sigma only the argmax is kept: it must beat the runner-up clearly
        ns, _ = sort_desc(n)
        below = ns[..., 0] < sigma
        if below.any():
            margins.append(rel_gap(ns[..., 0], ns[..., 1])[below].min())
        if amb_margin:
            # L_amb takes max_i g: the argmax among selected raw logits must be unambiguous where >= 2 are selected
            zs, _ = sort_desc(z.detach().masked_fill(~M, -math.inf))
            two = M.sum(-1) >= 2
            if two.any():
                margins.append(rel_gap(zs[..., 0], zs[..., 1])[two].min())
    return gs[0], gs[1], masks[0], masks[1], nxt, margins


# ----------------------------------------------------------------------------------------------------------------
# Monet experts: the official einsum contractions (docs/spec.md §1.4 / 1.5)

def monet_hd(x, p, g1, g2, m, prefix='moe.'):
    T = x.shape[0]
    E = g1.shape[-1]
    a = act_fn('relu2')(x @ p[f'{prefix}u.weight'].T + p[f'{prefix}u.bias']).view(T, E, m)  # (T, E, m)
    yy = torch.einsum('tim,thi,thj->tjm', a, g1, g2)  # (T, E, m)
    return yy.reshape(T, E * m) @ p[f'{prefix}v.weight'].T + torch.einsum('thj,jd->td', g2, p[f'{prefix}b'])


def monet_vd(x, p, g1, g2, m, prefix='moe.'):
    T = x.shape[0]
    E = g1.shape[-1]
    mh = m // 2
    a1 = act_fn('relu2')(x @ p[f'{prefix}u1.weight'].T + p[f'{prefix}u1.bias']).view(T, E, mh)
    a2 = act_fn('relu2')(x @ p[f'{prefix}u2.weight'].T + p[f'{prefix}u2.bias']).view(T, E, mh)
    h11 = torch.einsum('tim,thi->tim', a1, g1)
    h12 = torch.einsum('tjm,thj,thi->tim', a2, g2, g1)
    h21 = torch.einsum('tim,thi,thj->tjm', a1, g1, g2)
    h22 = torch.einsum('tjm,thj->tjm', a2, g2)
    top = (h11.reshape(T, -1) @ p[f'{prefix}v11.weight'].T + h12.reshape(T, -1) @ p[f'{prefix}v12.weight'].T
           + torch.einsum('thi,id->td', g1, p[f'{prefix}b1']))
    bot = (h21.reshape(T, -1) @ p[f'{prefix}v21.weight'].T + h22.reshape(T, -1) @ p[f'{prefix}v22.weight'].T
           + torch.einsum('thj,jd->td', g2, p[f'{prefix}b2']))
    return torch.cat([top, bot], dim=-1)


def monet_aux(g1, g2, unif_eps):
    """docs/spec.md §1.7 with g-bar = batch mean over tokens; unif_eps inside the log; L_amb averaged over tokens."""
    H, E = g1.shape[1], g1.shape[2]
    unif = 0.0
    amb = 0.0
    for g in (g1, g2):
        gbar = g.mean(0)  # (H, E)
        unif = unif - torch.log(gbar + unif_eps).sum() / (2 * H * E)
        amb = amb + (1 - g.max(dim=-1).values).mean(0).sum() / (2 * H)
    return unif, amb


# ----------------------------------------------------------------------------------------------------------------
# Llama decoder pieces

def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope(x, theta):
    """HF rotate-half RoPE on (B, heads, S, hd), positions 0..S-1."""
    S, hd = x.shape[-2], x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))  # (hd/2,)
    freqs = torch.outer(torch.arange(S, dtype=torch.float64), inv_freq)  # (S, hd/2)
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos(), emb.sin()
    x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def attention(x, p, pre, cfg):
    B, S, d = x.shape
    nH, nKV = cfg['num_attention_heads'], cfg['num_key_value_heads']
    hd = d // nH
    q = (x @ p[pre + 'self_attn.q_proj.weight'].T).view(B, S, nH, hd).transpose(1, 2)
    k = (x @ p[pre + 'self_attn.k_proj.weight'].T).view(B, S, nKV, hd).transpose(1, 2)
    v = (x @ p[pre + 'self_attn.v_proj.weight'].T).view(B, S, nKV, hd).transpose(1, 2)
    q = rope(q, cfg['rope_theta'])
    k = rope(k, cfg['rope_theta'])
    k = k.repeat_interleave(nH // nKV, dim=1)  # head h reads kv head h // (nH / nKV)
    v = v.repeat_interleave(nH // nKV, dim=1)
    att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)  # (B, nH, S, S)
    causal = torch.ones(S, S, dtype=torch.bool).tril()
    att = torch.softmax(att.masked_fill(~causal, -math.inf), dim=-1)
    o = (att @ v).transpose(1, 2).reshape(B, S, nH * hd)
    return o @ p[pre + 'self_attn.o_proj.weight'].T


def strip(p, pre):
    return {k[len(pre):]: v for k, v in p.items() if k.startswith(pre)}


def lm(tokens, p, st, cfg):
    """Returns dict of outputs (loss, logits, aux averages), next-state dict, margins, [(g1, g2) per router]."""
    B, S = tokens.shape
    L = cfg['num_hidden_layers']
    eps = cfg['rms_norm_eps']
    ffn = cfg['ffn']
    h = p['model.embed_tokens.weight'][tokens]  # (B, S, d)
    d = h.shape[-1]
    margins, nxt = [], {}
    aux = {}  # name -> list of per-layer (per-router) values
    g1 = g2 = None
    routed = []
    for i in range(L):
        pre = f'model.layers.{i}.'
        h = h + attention(rmsnorm(h, p[pre + 'input_layernorm.weight'], eps), p, pre, cfg)
        u = rmsnorm(h, p[pre + 'post_attention_layernorm.weight'], eps).reshape(B * S, d)
        topk_layer = ffn == 'topk' and i < L - cfg['n_last_non_topk']
        if ffn == 'dense':
            f = dense_ffn(u, strip(p, pre + 'mlp.'), cfg['activation'])
        elif ffn == 'smoe':
            f, lb, lz, _, mg = smoe(u, strip(p, pre + 'block_sparse_moe.'), cfg)
            aux.setdefault('loss_balance', []).append(lb)
            aux.setdefault('loss_z', []).append(lz)
            margins += mg
        elif ffn == 'topk':
            mp = strip(p, pre + 'mlp.')
            if topk_layer and cfg['topk_placement'] == 'ffn':
                f, _, mg = topk_ffn(u, mp, cfg['k'], cfg['alpha'])
                margins += mg
            else:  # dense ReLU MLP with the same parameter names (our reading: "keep the dense activation")
                f = torch.relu(u @ mp['up_proj.weight'].T) @ mp['down_proj.weight'].T
        elif ffn == 'peer':
            if i in cfg['peer_layers']:
                pc = dict(cfg, hidden_size=d)
                f, _, nx, mg = peer(u, strip(p, pre + 'mlp.'), strip(st, pre + 'mlp.'), pc)
                nxt.update({pre + 'mlp.' + k: v for k, v in nx.items()})
                margins += mg
            else:
                f = dense_ffn(u, strip(p, pre + 'mlp.'), cfg['activation'])
        elif ffn == 'monet':
            if i % cfg['moe_groups'] == 0:
                g1, g2, _, _, nx, mg = monet_router(u, strip(p, pre + 'router.'), strip(st, pre + 'router.'), cfg,
                                                    amb_margin=True)
                nxt.update({pre + 'router.' + k: v for k, v in nx.items()})
                margins += mg
                routed.append((g1, g2))
                un, am = monet_aux(g1, g2, cfg['unif_eps'])
                aux.setdefault('loss_unif', []).append(un)
                aux.setdefault('loss_amb', []).append(am)
            mp = strip(p, pre + 'moe.')
            if cfg['moe_decompose'] == 'vertical':
                f = monet_vd(u, mp, g1, g2, cfg['moe_dim'], prefix='')
            else:
                f = monet_hd(u, mp, g1, g2, cfg['moe_dim'], prefix='')
        else:
            raise ValueError(f'lm config.ffn: expected dense, smoe, topk, peer or monet, found {ffn!r}')
        h = h + f.view(B, S, d)
        if topk_layer and cfg['topk_placement'] == 'hidden':
            h, _, mg = topk_act(h, cfg['k'], cfg['alpha'])
            margins += mg
    h = rmsnorm(h, p['model.norm.weight'], eps)
    head = p['model.embed_tokens.weight'] if cfg['tie_word_embeddings'] else p['lm_head.weight']
    logits = h @ head.T  # (B, S, V)
    ce = Fn.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    outs = {'logits': logits}
    loss = ce
    aux_key = {'loss_balance': 'balance', 'loss_z': 'z', 'loss_unif': 'unif', 'loss_amb': 'amb'}
    for name, vals in aux.items():
        avg = torch.stack(vals).mean()
        outs[name] = avg
        loss = loss + cfg['aux'][aux_key[name]] * avg
    outs['loss'] = loss
    return outs, nxt, margins, routed
