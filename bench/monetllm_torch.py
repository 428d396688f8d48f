#!/usr/bin/python3
"""The PyTorch peer of bench/monetllm.ts: the same MonetLLM folder, the same steps (load, prefill, greedy decoding
with a KV cache), in PyTorch 1.13 on the CPU, in bfloat16 or float32.

    /usr/bin/python3 bench/monetllm_torch.py --dir /tmp/monetllm-1.4b [--dtype bf16|fp32] [--threads 2]
        [--prompt 512] [--tokens 8]

The model is written here from the folder's config (Llama attention with rotate-half RoPE; a router per group of
moe_groups layers with BatchNorm running statistics, threshold Φ⁻¹(1 − topk/E), softmax of the selected raw logits;
Monet-VD or HD experts mixed by the routing weights), in plain tensor operations. It prints wall and process CPU
seconds with the load average, as the TypeScript bench does.
"""

import argparse
import json
import math
import os
import struct
import time

import torch

DT = {'BF16': torch.bfloat16, 'F32': torch.float32, 'F16': torch.float16, 'I64': torch.int64}


def read_folder(d, dtype):
    idx = os.path.join(d, 'model.safetensors.index.json')
    files = sorted(set(json.load(open(idx))['weight_map'].values())) if os.path.exists(idx) else ['model.safetensors']
    w = {}
    for f in files:
        with open(os.path.join(d, f), 'rb') as fh:
            data = fh.read()
        (n,) = struct.unpack('<Q', data[:8])
        header = json.loads(data[8:8 + n])
        header.pop('__metadata__', None)
        base = 8 + n
        for name, h in header.items():
            b, e = h['data_offsets']
            t = torch.frombuffer(bytearray(data[base + b:base + e]), dtype=DT[h['dtype']]).reshape(h['shape'])
            w[name] = t if t.dtype == torch.int64 else t.to(dtype)
        del data
    return w


class Monet:
    def __init__(self, cfg, w, dtype):
        self.c, self.w, self.dtype = cfg, w, dtype
        self.L, self.d, self.nH = cfg['num_hidden_layers'], cfg['hidden_size'], cfg['num_attention_heads']
        self.nKV = cfg.get('num_key_value_heads') or self.nH
        self.hd = self.d // self.nH
        self.E, self.H, self.m, self.G = cfg['moe_experts'], cfg['moe_heads'], cfg['moe_dim'], cfg['moe_groups']
        self.sigma = torch.special.ndtri(torch.tensor(1 - cfg['moe_topk'] / self.E, dtype=torch.float64)).item()
        hd = self.hd
        inv = 1.0 / (cfg.get('rope_theta', 10000.0) ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        ang = torch.outer(torch.arange(cfg['max_position_embeddings'], dtype=torch.float64), inv)
        self.cos = torch.cat([ang.cos(), ang.cos()], -1).to(dtype)
        self.sin = torch.cat([ang.sin(), ang.sin()], -1).to(dtype)
        self.k = [None] * self.L
        self.v = [None] * self.L

    def norm(self, x, name):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.c['rms_norm_eps'])).to(x.dtype) * self.w[name]

    def rope(self, x, pos):  # x (heads, T, hd)
        cos, sin = self.cos[pos], self.sin[pos]
        half = self.hd // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin

    def router(self, u, pre):
        gs = []
        for r in (1, 2):
            z = (u @ self.w[f'{pre}router.w{r}.weight'].T).float().view(-1, self.H, self.E)
            mean = self.w[f'{pre}router.norm{r}.running_mean'].float().view(1, self.H, 1)
            var = self.w[f'{pre}router.norm{r}.running_var'].float().view(1, self.H, 1)
            n = (z - mean) / torch.sqrt(var + 1e-5)
            s = n.amax(-1, keepdim=True).clamp_max(self.sigma)
            gs.append(torch.softmax(torch.where(n >= s, z, torch.full_like(z, -1e10)), -1).to(self.dtype))
        return gs

    def experts(self, u, g1, g2, pre):
        T, E, w = u.shape[0], self.E, self.w
        if self.c['moe_decompose'] == 'horizontal':
            x = torch.relu(u @ w[pre + 'moe.u.weight'].T + w[pre + 'moe.u.bias']).pow(2).view(T, E, -1)
            x = torch.einsum('tim,thi,thj->tjm', x, g1, g2).reshape(T, -1) @ w[pre + 'moe.v.weight'].T
            return x + torch.einsum('thj,jd->td', g2, w[pre + 'moe.b'])
        x1 = torch.relu(u @ w[pre + 'moe.u1.weight'].T + w[pre + 'moe.u1.bias']).pow(2).view(T, E, -1)
        x2 = torch.relu(u @ w[pre + 'moe.u2.weight'].T + w[pre + 'moe.u2.bias']).pow(2).view(T, E, -1)
        x11 = torch.einsum('tim,thi->tim', x1, g1).reshape(T, -1) @ w[pre + 'moe.v11.weight'].T
        x12 = torch.einsum('tjm,thj,thi->tim', x2, g2, g1).reshape(T, -1) @ w[pre + 'moe.v12.weight'].T
        x13 = torch.einsum('thi,id->td', g1, w[pre + 'moe.b1'])
        x21 = torch.einsum('tim,thi,thj->tjm', x1, g1, g2).reshape(T, -1) @ w[pre + 'moe.v21.weight'].T
        x22 = torch.einsum('tjm,thj->tjm', x2, g2).reshape(T, -1) @ w[pre + 'moe.v22.weight'].T
        x23 = torch.einsum('thj,jd->td', g2, w[pre + 'moe.b2'])
        return torch.cat([x11 + x12 + x13, x21 + x22 + x23], -1)

    @torch.no_grad()
    def step(self, ids, past):
        """Logits of the last of `ids` (new tokens at positions past..), caches extended."""
        T, w = len(ids), self.w
        pos = torch.arange(past, past + T)
        h = w['model.embed_tokens.weight'][torch.tensor(ids)]
        g1 = g2 = None
        for i in range(self.L):
            pre = f'model.layers.{i}.'
            a = self.norm(h, pre + 'input_layernorm.weight')
            q = (a @ w[pre + 'self_attn.q_proj.weight'].T).view(T, self.nH, self.hd).transpose(0, 1)
            k = (a @ w[pre + 'self_attn.k_proj.weight'].T).view(T, self.nKV, self.hd).transpose(0, 1)
            v = (a @ w[pre + 'self_attn.v_proj.weight'].T).view(T, self.nKV, self.hd).transpose(0, 1)
            q, k = self.rope(q, pos), self.rope(k, pos)
            self.k[i] = k if past == 0 else torch.cat([self.k[i], k], 1)
            self.v[i] = v if past == 0 else torch.cat([self.v[i], v], 1)
            kk = self.k[i].repeat_interleave(self.nH // self.nKV, 0)
            vv = self.v[i].repeat_interleave(self.nH // self.nKV, 0)
            s = (q @ kk.transpose(1, 2)).float() / math.sqrt(self.hd)
            if T > 1:
                s = s.masked_fill(torch.ones(T, past + T, dtype=torch.bool).triu(past + 1), float('-inf'))
            att = (torch.softmax(s, -1).to(self.dtype) @ vv).transpose(0, 1).reshape(T, -1)
            h = h + att @ w[pre + 'self_attn.o_proj.weight'].T
            u = self.norm(h, pre + 'post_attention_layernorm.weight')
            if i % self.G == 0:
                g1, g2 = self.router(u, pre)
            h = h + self.experts(u, g1, g2, pre)
        return (self.norm(h[-1:], 'model.norm.weight') @ w['lm_head.weight'].T).float()[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dir', default='/tmp/monetllm-1.4b')
    ap.add_argument('--dtype', choices=['bf16', 'fp32'], default='bf16')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--prompt', type=int, default=512)
    ap.add_argument('--tokens', type=int, default=8)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtype = torch.bfloat16 if a.dtype == 'bf16' else torch.float32
    load = lambda: ' '.join(f'{x:.1f}' for x in os.getloadavg())  # noqa: E731
    t0, c0 = time.perf_counter(), time.process_time()
    cfg = json.load(open(os.path.join(a.dir, 'config.json')))
    model = Monet(cfg, read_folder(a.dir, dtype), dtype)
    print(f'load: {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU; '
          f'torch {torch.__version__} {a.dtype}, {a.threads} threads; load average {load()}', flush=True)
    ids = [1 + (i * 7919) % 31999 for i in range(a.prompt)]
    t0, c0 = time.perf_counter(), time.process_time()
    logits = model.step(ids, 0)
    pw = time.perf_counter() - t0
    print(f'prefill {a.prompt} tokens: {pw:.1f} s wall ({1000 * pw / a.prompt:.0f} ms/token), '
          f'{time.process_time() - c0:.1f} s CPU; load average {load()}', flush=True)
    t0, c0 = time.perf_counter(), time.process_time()
    past = a.prompt
    for _ in range(a.tokens):
        nxt = int(torch.argmax(logits))
        logits = model.step([nxt], past)
        past += 1
    dw, dc = time.perf_counter() - t0, time.process_time() - c0
    print(f'decode {a.tokens} tokens with the KV cache: {a.tokens / dw:.2f} tokens/s wall ({a.tokens / dc:.2f} per CPU'
          f' second); prefill per token is {(dw / a.tokens) / (pw / a.prompt):.1f}x faster than decoding; '
          f'load average {load()}', flush=True)


if __name__ == '__main__':
    main()
