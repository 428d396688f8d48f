"""Every trainable `monet train` model in PyTorch eager, float32: the peer that bench/train-step.ts times our WASM
training step against, on the same CPU, in the same run.

Usage: python3 bench/train_step_torch.py <dir> [--steps N] [--warmup N] [--threads N] [--lr X] [--alpha A]
  <dir> holds config.json (the model config, docs/fixtures.md `lm` keys), model.safetensors (initial parameters and
  BatchNorm buffers under the checkpoint names) and batch.safetensors (`tokens` (B, S) I32), all written by
  bench/train-step.ts. Prints one JSON line: the step-0 loss (a check that both sides run the same model), the
  wall and process-CPU seconds of full training steps (forward, backward, gradient clipping, AdamW), and what ran
  them (bench/lib/torch_env.py: PyTorch version, threads, the BLAS library really loaded).

The models are the project's (docs/monet.md, docs/peer.md, docs/reference.md), written the way a PyTorch user
would: Monet's router (BatchNorm over tokens × experts per head, threshold min(max n, Φ⁻¹(1 − topk/E)), softmax of
the raw logits over the selected set) and its MoVDE / MoHDE contractions as the official einsums; the SMoE as
Hugging Face's Mixtral block (each expert on the tokens routed to it, index_add_); PEER with torch.topk over the
product keys and gathered expert rows; TopK with torch.topk's k-th value as the threshold. Aux losses per router
(Monet) or layer (SMoE), averaged.
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as Fn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tools', 'pytorch'))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'lib'))
import st  # noqa: E402  (the project's minimal safetensors reader)
import torch_env  # noqa: E402


def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


class Model:
    def __init__(self, cfg, tensors):
        self.cfg = cfg
        self.p = {}
        self.state = {}
        for name, (dtype, arr) in tensors.items():
            t = torch.from_numpy(arr.astype('float32'))
            if 'running_' in name:
                self.state[name] = t
            else:
                self.p[name] = t.requires_grad_(True)
        d, nH = cfg['hidden_size'], cfg['num_attention_heads']
        self.hd = d // nH
        if cfg['ffn'] == 'monet':
            E, topk = cfg['moe_experts'], cfg['moe_topk']
            self.sigma = torch.special.ndtri(torch.tensor(1.0 - topk / E, dtype=torch.float64)).item()

    def rope_tables(self, S):
        hd = self.hd
        inv = 1.0 / (self.cfg['rope_theta'] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        f = torch.outer(torch.arange(S, dtype=torch.float64), inv)
        emb = torch.cat([f, f], -1)
        return emb.cos().float(), emb.sin().float()

    def attention(self, x, pre, cos, sin, mask):
        c, p = self.cfg, self.p
        B, S, d = x.shape
        nH, nKV, hd = c['num_attention_heads'], c['num_key_value_heads'], self.hd
        q = (x @ p[pre + 'self_attn.q_proj.weight'].T).view(B, S, nH, hd).transpose(1, 2)
        k = (x @ p[pre + 'self_attn.k_proj.weight'].T).view(B, S, nKV, hd).transpose(1, 2)
        v = (x @ p[pre + 'self_attn.v_proj.weight'].T).view(B, S, nKV, hd).transpose(1, 2)

        def rot(t):
            t1, t2 = t[..., :hd // 2], t[..., hd // 2:]
            return t * cos + torch.cat([-t2, t1], -1) * sin

        q, k = rot(q), rot(k)
        if nKV != nH:
            k = k.repeat_interleave(nH // nKV, dim=1)
            v = v.repeat_interleave(nH // nKV, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = torch.softmax(att.masked_fill(mask, float('-inf')), -1)
        o = (att @ v).transpose(1, 2).reshape(B, S, nH * hd)
        return o @ p[pre + 'self_attn.o_proj.weight'].T

    def router(self, u, pre, train):
        c, p = self.cfg, self.p
        T = u.shape[0]
        H, E = c['moe_heads'], c['moe_experts']
        eps, mom = c.get('bn_eps', 1e-5), c.get('bn_momentum', 0.1)
        gs = []
        for r in (1, 2):
            z = (u @ p[f'{pre}router.w{r}.weight'].T).view(T, H, E)
            rm, rv = self.state[f'{pre}router.norm{r}.running_mean'], self.state[f'{pre}router.norm{r}.running_var']
            with torch.no_grad():
                if train:
                    mean = z.mean((0, 2))
                    var = z.var((0, 2), unbiased=False)
                    n_ = T * E
                    rm.mul_(1 - mom).add_(mom * mean)
                    rv.mul_(1 - mom).add_(mom * var * n_ / (n_ - 1))
                else:
                    mean, var = rm, rv
                n = (z - mean.view(1, H, 1)) / torch.sqrt(var.view(1, H, 1) + eps)
                s = n.amax(-1, keepdim=True).clamp_max(self.sigma)
                M = n >= s
            gs.append(torch.softmax(z.masked_fill(~M, float('-inf')), -1))
        g1, g2 = gs
        unif = 0.0
        amb = 0.0
        ue = c.get('unif_eps', 1e-10)
        for g in gs:
            unif = unif - torch.log(g.mean(0) + ue).sum() / (2 * H * E)
            amb = amb + (1 - g.max(-1).values).mean(0).sum() / (2 * H)
        return g1, g2, unif, amb

    def monet(self, u, pre, g1, g2):
        c, p = self.cfg, self.p
        T = u.shape[0]
        E, m = c['moe_experts'], c['moe_dim']
        q = pre + 'moe.'
        if c['moe_decompose'] == 'horizontal':
            a = torch.relu(u @ p[q + 'u.weight'].T + p[q + 'u.bias']).square().view(T, E, m)
            cc = torch.einsum('thi,tim->thm', g1, a)
            y = torch.einsum('thj,thm->tjm', g2, cc)
            return y.reshape(T, E * m) @ p[q + 'v.weight'].T + g2.sum(1) @ p[q + 'b']
        mh = m // 2
        a1 = torch.relu(u @ p[q + 'u1.weight'].T + p[q + 'u1.bias']).square().view(T, E, mh)
        a2 = torch.relu(u @ p[q + 'u2.weight'].T + p[q + 'u2.bias']).square().view(T, E, mh)
        G1, G2 = g1.sum(1), g2.sum(1)  # (T, E)
        c1 = torch.einsum('thi,tim->thm', g1, a1)
        c2 = torch.einsum('thj,tjm->thm', g2, a2)
        h11 = G1.unsqueeze(-1) * a1
        h12 = torch.einsum('thi,thm->tim', g1, c2)
        h21 = torch.einsum('thj,thm->tjm', g2, c1)
        h22 = G2.unsqueeze(-1) * a2
        top = h11.reshape(T, -1) @ p[q + 'v11.weight'].T + h12.reshape(T, -1) @ p[q + 'v12.weight'].T + G1 @ p[q + 'b1']
        bot = h21.reshape(T, -1) @ p[q + 'v21.weight'].T + h22.reshape(T, -1) @ p[q + 'v22.weight'].T + G2 @ p[q + 'b2']
        return torch.cat([top, bot], -1)

    def dense(self, u, pre, act=None):
        c, p = self.cfg, self.p
        q = pre + 'mlp.'
        act = act or c.get('activation', 'swiglu')
        if act == 'swiglu':
            h = Fn.silu(u @ p[q + 'gate_proj.weight'].T) * (u @ p[q + 'up_proj.weight'].T)
        else:
            h = ACT[act](u @ p[q + 'up_proj.weight'].T)
        return h @ p[q + 'down_proj.weight'].T

    def smoe(self, u, pre):
        """Mixtral's sparse block: top-k of the gate logits, softmax over them, each expert on its tokens."""
        c, p = self.cfg, self.p
        q = pre + 'block_sparse_moe.'
        T = u.shape[0]
        E, k = c['num_experts'], c['top_k']
        z = u @ p[q + 'gate.weight'].T  # (T, E)
        top, idx = torch.topk(z, k, dim=-1)  # (T, k)
        w = torch.softmax(top, dim=-1)
        y = torch.zeros_like(u)
        for e in range(E):
            tok, slot = torch.where(idx == e)
            if tok.numel() == 0:
                continue
            xe = u[tok]
            ex = q + f'experts.{e}.'
            if c.get('activation', 'swiglu') == 'swiglu':
                h = Fn.silu(xe @ p[ex + 'w1.weight'].T) * (xe @ p[ex + 'w3.weight'].T)
            else:
                h = ACT[c['activation']](xe @ p[ex + 'w1.weight'].T)
            y.index_add_(0, tok, (h @ p[ex + 'w2.weight'].T) * w[tok, slot, None])
        with torch.no_grad():
            f = torch.bincount(idx.flatten(), minlength=E).float() / (T * k)
        balance = E * (f * torch.softmax(z, dim=-1).mean(0)).sum()
        zloss = (torch.logsumexp(z, dim=-1) ** 2).mean()
        return y, balance, zloss

    def peer(self, u, pre, train):
        """PEER: BatchNorm'd query, product-key top-k per half, top-k of the k² candidates, gathered expert rows."""
        c, p = self.cfg, self.p
        q = pre + 'mlp.'
        T, d = u.shape
        H, k, dk = c['heads'], c['top_k'], c['key_dim']
        n = math.isqrt(c['num_experts'])
        z = u @ p[q + 'query.weight'].T + p[q + 'query.bias']
        z = Fn.batch_norm(z, self.state[q + 'query_bn.running_mean'], self.state[q + 'query_bn.running_var'],
                          p[q + 'query_bn.weight'], p[q + 'query_bn.bias'], training=train,
                          momentum=c.get('bn_momentum', 0.1), eps=c.get('bn_eps', 1e-5)).view(T, H, dk)
        keys = p[q + 'sub_keys']  # (2, n, dk/2)
        s1, i1 = torch.topk(z[..., :dk // 2] @ keys[0].T, k, dim=-1)  # (T, H, k)
        s2, i2 = torch.topk(z[..., dk // 2:] @ keys[1].T, k, dim=-1)
        cand = (s1[..., :, None] + s2[..., None, :]).reshape(T, H, k * k)
        ids = (i1[..., :, None] * n + i2[..., None, :]).reshape(T, H, k * k)
        sc, j = torch.topk(cand, k, dim=-1)
        experts = torch.gather(ids, 2, j)  # (T, H, k)
        w = torch.softmax(sc, dim=-1)
        hpre = torch.einsum('td,thkd->thk', u, p[q + 'w_down'][experts])
        a = ACT[c.get('activation', 'gelu')](hpre) * w
        return torch.einsum('thk,thkd->td', a, p[q + 'w_up'][experts])

    def topk_ffn(self, u, pre, alpha):
        """TopK on the MLP's hidden units: α·relu(z) + (1 − α)·relu(z)·[z ≥ k-th largest z]."""
        p = self.p
        q = pre + 'mlp.'
        zh = u @ p[q + 'up_proj.weight'].T
        with torch.no_grad():
            mask = zh >= torch.topk(zh, self.cfg['k'], dim=-1).values[:, -1:]
        r = torch.relu(zh)
        return (alpha * r + (1 - alpha) * r * mask) @ p[q + 'down_proj.weight'].T

    def loss(self, tokens, train=True, alpha=1.0):
        c, p = self.cfg, self.p
        B, S = tokens.shape
        L, eps = c['num_hidden_layers'], c.get('rms_norm_eps', 1e-6)
        cos, sin = self.rope_tables(S)
        mask = ~torch.ones(S, S, dtype=torch.bool).tril()
        h = p['model.embed_tokens.weight'][tokens]
        d = h.shape[-1]
        unifs, ambs = [], []
        aux = {'balance': [], 'z': []}
        g1 = g2 = None
        for i in range(L):
            pre = f'model.layers.{i}.'
            h = h + self.attention(rmsnorm(h, p[pre + 'input_layernorm.weight'], eps), pre, cos, sin, mask)
            u = rmsnorm(h, p[pre + 'post_attention_layernorm.weight'], eps).reshape(B * S, d)
            if c['ffn'] == 'monet':
                if i % c['moe_groups'] == 0:
                    g1, g2, un, am = self.router(u, pre, train)
                    unifs.append(un)
                    ambs.append(am)
                f = self.monet(u, pre, g1, g2)
            elif c['ffn'] == 'dense':
                f = self.dense(u, pre)
            elif c['ffn'] == 'smoe':
                f, lb, lz = self.smoe(u, pre)
                aux['balance'].append(lb)
                aux['z'].append(lz)
            elif c['ffn'] == 'peer':
                f = self.peer(u, pre, train) if i in c['peer_layers'] else self.dense(u, pre)
            elif c['ffn'] == 'topk':
                if c.get('topk_placement', 'ffn') != 'ffn':
                    raise SystemExit('train_step_torch.py: topk_placement hidden is not implemented here (ffn)')
                dense_tail = i >= L - c.get('n_last_non_topk', 2)
                f = self.dense(u, pre, 'relu') if dense_tail else self.topk_ffn(u, pre, alpha)
            else:
                raise SystemExit(f"train_step_torch.py: ffn '{c['ffn']}' is not implemented here")
            h = h + f.view(B, S, d)
        hn = rmsnorm(h, p['model.norm.weight'], eps)
        head = p['model.embed_tokens.weight'] if c.get('tie_word_embeddings') else p['lm_head.weight']
        logits = hn @ head.T
        ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        loss = ce
        if unifs:
            coef = c['aux']
            loss = loss + coef['unif'] * sum(unifs) / len(unifs) + coef['amb'] * sum(ambs) / len(ambs)
        if aux['balance']:
            coef = c['aux']
            loss = loss + coef['balance'] * sum(aux['balance']) / L + coef['z'] * sum(aux['z']) / L
        return loss, ce


ACT = {'relu': torch.relu, 'relu2': lambda z: torch.relu(z).square(), 'gelu': Fn.gelu, 'silu': Fn.silu}


def no_decay(name):
    return name.endswith('norm.weight') or name.endswith('.bias') or name.split('.')[-1] in ('b', 'b1', 'b2')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('dir')
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--threads', type=int, default=0)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--alpha', type=float, default=1.0)
    args = ap.parse_args()
    torch_env.set_threads(args.threads)
    cfg = json.load(open(os.path.join(args.dir, 'config.json')))
    _, tensors = st.read(os.path.join(args.dir, 'model.safetensors'))
    _, batch = st.read(os.path.join(args.dir, 'batch.safetensors'))
    tokens = torch.from_numpy(batch['tokens'][1].astype('int64'))
    model = Model(cfg, tensors)
    decay = [t for n, t in model.p.items() if not no_decay(n)]
    nodecay = [t for n, t in model.p.items() if no_decay(n)]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': nodecay, 'weight_decay': 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    params = list(model.p.values())

    def step():
        opt.zero_grad(set_to_none=False)
        loss, ce = model.loss(tokens, alpha=args.alpha)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    loss0 = step()
    for _ in range(args.warmup - 1):
        step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    B, S = tokens.shape
    print(json.dumps({
        'loss0': loss0, 'seconds_per_step': wall / args.steps, 'cpu_seconds_per_step': cpu / args.steps,
        'tokens_per_s': B * S * args.steps / wall, **torch_env.environment(),
    }))


if __name__ == '__main__':
    main()
