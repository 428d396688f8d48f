#!/usr/bin/python3
"""Write monet-ts fixtures from an independent PyTorch (float64, autograd) implementation.

    /usr/bin/python3 tools/pytorch/write_fixtures.py [--out fixtures/external/pytorch] [--only KIND[/CASE]] [--list]

Every case: draw inputs and parameters from a seeded generator, run the forward in layers.py, take every gradient
with torch.autograd (no hand-written backward anywhere), and write one safetensors file in the public fixture format
(docs/fixtures.md): in.* / param.* / state.* inputs, out.* / grad.* / idx.* / next.* expected values.

Objective (the scalar the gradients are of):
  layer kinds    L = sum(out.y * in.dy) + sum_name config.aux[name] * out.loss_<name>
  monet-router   L = sum(out.g1 * in.dg1) + sum(out.g2 * in.dg2)
  lm             L = out.loss
Gradients are written for every real in.* that feeds the computation (in.x) and every param.*; in.dy / in.dg*
are the upstream seed of the objective, not inputs of the layer, so they get none.

Routing margins: inputs are redrawn (from the same generator) until every discrete decision has a relative margin
>= 1e-3; the smallest one is recorded as metadata `min_margin`.
Configs: each case's config is checked against its kind's JSON schema (schema/kinds.schema.json, made from
src/kinds/ by `npm run kinds:schema`; tools/pytorch/kinds.py), keys and rules between keys, and the keys a case
leaves out take the defaults declared there; the file's metadata config holds the case's own keys, as written below.
Tensors: before a file is written, its tensors' names, shapes and dtypes are checked against the layout the schema
declares for the case's config (x-monet-layout), so a name or shape written here that disagrees with the contract
stops the writer.
Every file carries the content checksum (metadata `checksum`, st.checksum; docs/fixtures.md §1).
Re-running reproduces identical bytes on one machine (single thread, seeded draws, deterministic writer); another
machine's PyTorch build may differ in the last bits of some values.
"""

import argparse
import json
import math
import os
import random
import sys

import torch

sys.dont_write_bytecode = True  # no __pycache__ beside the committed sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kinds  # noqa: E402
import layers as Lyr  # noqa: E402
import st  # noqa: E402

FORMAT = 'monet-ts-fixture/1'
GENERATOR = f'pytorch {torch.__version__} (tools/pytorch/write_fixtures.py)'
MIN_MARGIN = 1e-3
MAX_DRAWS = 500
F64 = torch.float64


# ----------------------------------------------------------------------------------------------------------------
# drawing

class Draw:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def n(self, *shape, std=1.0, mean=0.0):
        return torch.randn(*shape, generator=self.g, dtype=F64) * std + mean

    def u(self, *shape, lo=0.0, hi=1.0):
        return torch.rand(*shape, generator=self.g, dtype=F64) * (hi - lo) + lo

    def lin(self, out_f, in_f):
        return self.n(out_f, in_f, std=1.0 / math.sqrt(in_f))

    def ints(self, high, *shape):
        return torch.randint(0, high, shape, generator=self.g, dtype=torch.int64)


# Every tensor is drawn with the shape the kinds' schema declares for the case (kinds.shapes: the `S` below, full
# names such as 'param.query.weight'), and present where the schema's layout has it (a swiglu gate, a PEER layer, a
# Monet router): the writer spells the names it draws, and how, never a shape.

def dense_params(D, S, pre=''):
    """gate_proj (swiglu only), up_proj, down_proj: the ones the layout has."""
    names = ('gate_proj.weight', 'up_proj.weight', 'down_proj.weight')
    return {pre + n: D.lin(*S['param.' + pre + n]) for n in names if 'param.' + pre + n in S}


def smoe_params(D, S, pre=''):
    """gate.weight (E, d), then expert e's w1, w2 (and w3 for swiglu) in Mixtral order."""
    p = {pre + 'gate.weight': D.lin(*S['param.' + pre + 'gate.weight'])}
    for e in range(S['param.' + pre + 'gate.weight'][0]):
        for w in ('w1', 'w2', 'w3'):
            n = f'{pre}experts.{e}.{w}.weight'
            if 'param.' + n in S:
                p[n] = D.lin(*S['param.' + n])
    return p


def peer_params(D, S, mode, pre=''):
    P = lambda n: S['param.' + pre + n]  # noqa: E731
    bq = D.n(*P('query.bias'), std=0.3)
    p = {pre + 'query.weight': D.lin(*P('query.weight')), pre + 'query.bias': bq,
         pre + 'query_bn.weight': D.n(*P('query_bn.weight'), std=0.2, mean=1.0),
         pre + 'query_bn.bias': D.n(*P('query_bn.bias'), std=0.2),
         pre + 'sub_keys': D.n(*P('sub_keys'), std=1.0 / math.sqrt(P('sub_keys')[-1])),
         pre + 'w_down': D.lin(*P('w_down')), pre + 'w_up': D.n(*P('w_up'), std=0.5)}
    rm, rv = pre + 'query_bn.running_mean', pre + 'query_bn.running_var'
    if mode == 'train':  # any state: train mode only updates it
        s = {rm: D.n(*S['state.' + rm], std=0.1), rv: D.u(*S['state.' + rv], lo=0.5, hi=1.5)}
    else:  # eval mode normalises with it: keep it near the real statistics of q (mean ~ bias, var ~ 1)
        s = {rm: bq + D.n(*S['state.' + rm], std=0.1), rv: D.u(*S['state.' + rv], lo=0.6, hi=1.4)}
    return p, s


def router_params(D, S, pre=''):
    p = {pre + w: D.lin(*S['param.' + pre + w]) for w in ('w1.weight', 'w2.weight')}
    s = {}
    for r in (1, 2):
        s[pre + f'norm{r}.running_mean'] = D.n(*S['state.' + pre + f'norm{r}.running_mean'], std=0.1)
        s[pre + f'norm{r}.running_var'] = D.u(*S['state.' + pre + f'norm{r}.running_var'], lo=0.6, hi=1.4)
    return p, s


# The Monet experts' tensors in drawing order, each with how it is drawn: a projection (D.lin) or N(0, std).
MONET_EXPERTS = {
    'horizontal': [('u.weight', None), ('u.bias', 0.2), ('v.weight', None), ('b', 0.3)],
    'vertical': [('u1.weight', None), ('u1.bias', 0.2), ('u2.weight', None), ('u2.bias', 0.2),
                 ('v11.weight', None), ('v12.weight', None), ('v21.weight', None), ('v22.weight', None),
                 ('b1', 0.3), ('b2', 0.3)],
}


def monet_expert_params(D, S, decompose, pre=''):
    return {pre + n: D.lin(*S['param.' + pre + n]) if std is None else D.n(*S['param.' + pre + n], std=std)
            for n, std in MONET_EXPERTS[decompose]}


# ----------------------------------------------------------------------------------------------------------------
# per-kind draw + forward. draw(D, cfg) -> (ins, params, state); forward(cfg, ins, p, s) ->
#   (outs: {name: tensor}, idx: {name: int/bool tensor}, nxt: {name: tensor}, margins: [0-d tensors], L
#    [, routed: [(g1, g2) per Monet router]])

def layer_inputs(D, S, seeds=('dy',)):
    """in.x and the upstream seeds (in.dy, or the router's in.dg1, in.dg2), N(0, 1)."""
    return {n: D.n(*S['in.' + n]) for n in ('x', *seeds)}


def draw_dense(D, c):
    S = kinds.shapes('dense-ffn', c)
    return layer_inputs(D, S), dense_params(D, S), {}


def fwd_dense(c, i, p, s):
    y = Lyr.dense_ffn(i['x'], p, c['activation'])
    return {'y': y}, {}, {}, [], (y * i['dy']).sum()


def draw_smoe(D, c):
    S = kinds.shapes('smoe', c)
    return layer_inputs(D, S), smoe_params(D, S), {}


def fwd_smoe(c, i, p, s):
    y, lb, lz, sel, mg = Lyr.smoe(i['x'], p, c)
    L = (y * i['dy']).sum() + c['aux']['balance'] * lb + c['aux']['z'] * lz
    return {'y': y, 'loss_balance': lb, 'loss_z': lz}, {'topk': sel}, {}, mg, L


def draw_topk(D, c):
    return layer_inputs(D, kinds.shapes('topk', c)), {}, {}


def fwd_topk(c, i, p, s):
    y, mask, mg = Lyr.topk_act(i['x'], c['k'], c['alpha'])
    return {'y': y}, {'mask': mask}, {}, mg, (y * i['dy']).sum()


def draw_topk_ffn(D, c):
    S = kinds.shapes('topk-ffn', c)
    return layer_inputs(D, S), dense_params(D, S), {}


def fwd_topk_ffn(c, i, p, s):
    y, mask, mg = Lyr.topk_ffn(i['x'], p, c['k'], c['alpha'])
    return {'y': y}, {'mask': mask}, {}, mg, (y * i['dy']).sum()


def draw_peer(D, c):
    S = kinds.shapes('peer', c)
    p, s = peer_params(D, S, c['mode'])
    return layer_inputs(D, S), p, s


def fwd_peer(c, i, p, s):
    y, experts, nxt, mg = Lyr.peer(i['x'], p, s, c)
    return {'y': y}, {'experts': experts}, nxt, mg, (y * i['dy']).sum()


def draw_router(D, c):
    S = kinds.shapes('monet-router', c)
    p, s = router_params(D, S)
    return layer_inputs(D, S, seeds=('dg1', 'dg2')), p, s


def fwd_router(c, i, p, s):
    g1, g2, m1, m2, nxt, mg = Lyr.monet_router(i['x'], p, s, c)
    L = (g1 * i['dg1']).sum() + (g2 * i['dg2']).sum()
    return {'g1': g1, 'g2': g2}, {'mask1': m1, 'mask2': m2}, nxt, mg, L, [(g1, g2)]


def draw_monet(decompose):
    def draw(D, c):
        S = kinds.shapes('monet-vd' if decompose == 'vertical' else 'monet-hd', c)
        p, s = router_params(D, S, pre='router.')
        p.update(monet_expert_params(D, S, decompose, pre='moe.'))
        return layer_inputs(D, S), p, s
    return draw


def fwd_monet(decompose):
    def fwd(c, i, p, s):
        g1, g2, m1, m2, nxt, mg = Lyr.monet_router(i['x'], p, s, c, prefix='router.', amb_margin=True)
        moe = Lyr.monet_vd if decompose == 'vertical' else Lyr.monet_hd
        y = moe(i['x'], p, g1, g2, c['moe_dim'])
        un, am = Lyr.monet_aux(g1, g2, c['unif_eps'])
        L = (y * i['dy']).sum() + c['aux']['unif'] * un + c['aux']['amb'] * am
        return ({'y': y, 'loss_unif': un, 'loss_amb': am, 'g1': g1, 'g2': g2}, {'mask1': m1, 'mask2': m2},
                nxt, mg, L, [(g1, g2)])
    return fwd


def draw_lm(D, c):
    S = kinds.shapes('lm', c)
    P = lambda n: S['param.' + n]  # noqa: E731
    p = {'model.embed_tokens.weight': D.n(*P('model.embed_tokens.weight'))}
    s = {}
    for i in range(c['num_hidden_layers']):
        pre = f'model.layers.{i}.'
        p[pre + 'input_layernorm.weight'] = D.n(*P(pre + 'input_layernorm.weight'), std=0.1, mean=1.0)
        for n in ('q_proj', 'k_proj', 'v_proj', 'o_proj'):
            p[pre + f'self_attn.{n}.weight'] = D.lin(*P(pre + f'self_attn.{n}.weight'))
        p[pre + 'post_attention_layernorm.weight'] = D.n(*P(pre + 'post_attention_layernorm.weight'), std=0.1,
                                                         mean=1.0)
        # the feed-forward: which tensors layer i has is the layout's (PEER layers, Monet routers)
        if c['ffn'] in ('dense', 'topk'):
            p.update(dense_params(D, S, pre + 'mlp.'))
        elif c['ffn'] == 'smoe':
            p.update(smoe_params(D, S, pre + 'block_sparse_moe.'))
        elif c['ffn'] == 'peer':
            if 'param.' + pre + 'mlp.w_down' in S:
                pp, ss = peer_params(D, S, c['mode'], pre + 'mlp.')
                p.update(pp)
                s.update(ss)
            else:
                p.update(dense_params(D, S, pre + 'mlp.'))
        elif c['ffn'] == 'monet':
            if 'param.' + pre + 'router.w1.weight' in S:
                pp, ss = router_params(D, S, pre + 'router.')
                p.update(pp)
                s.update(ss)
            p.update(monet_expert_params(D, S, c['moe_decompose'], pre + 'moe.'))
    p['model.norm.weight'] = D.n(*P('model.norm.weight'), std=0.1, mean=1.0)
    if 'param.lm_head.weight' in S:  # absent with tie_word_embeddings
        p['lm_head.weight'] = D.lin(*P('lm_head.weight'))
    return {'tokens': D.ints(c['vocab_size'], *S['in.tokens'])}, p, s


def fwd_lm(c, i, p, s):
    outs, nxt, mg, routed = Lyr.lm(i['tokens'], p, s, c)
    return outs, {}, nxt, mg, outs['loss'], routed


KINDS = {
    'dense-ffn': (draw_dense, fwd_dense),
    'smoe': (draw_smoe, fwd_smoe),
    'topk': (draw_topk, fwd_topk),
    'topk-ffn': (draw_topk_ffn, fwd_topk_ffn),
    'peer': (draw_peer, fwd_peer),
    'monet-router': (draw_router, fwd_router),
    'monet-hd': (draw_monet('horizontal'), fwd_monet('horizontal')),
    'monet-vd': (draw_monet('vertical'), fwd_monet('vertical')),
    'lm': (draw_lm, fwd_lm),
}

# ----------------------------------------------------------------------------------------------------------------
# the cases
#
# Keys starting with '_' are drawing sizes (T tokens; B, S for models; F for the bare topk) and are not written to
# config. Options: dtype 'f64' (default) | 'f32in' (in/param/state stored as F32, expected values F64, all computed
# in float64 from the F32-rounded inputs) | 'f32' (every real tensor F32); order 'canonical' | 'shuffled' (header
# and data blocks in one seeded random order) | 'scrambled' (data blocks shuffled, header entries sorted by name,
# __metadata__ after them); idx_dtype 'I32' | 'I64'; scalar '0d' | '1' (aux losses as (1,)).

AUX_SMOE = {'balance': 0.1, 'z': 0.05}
AUX_MONET = {'unif': 0.5, 'amb': 0.25}
# The declared defaults, written out in the cases' configs (kinds.py reads them from the schema).
BN = {'bn_eps': kinds.default('peer', 'bn_eps'), 'bn_momentum': kinds.default('peer', 'bn_momentum')}
MONET_ACT = kinds.default('monet-vd', 'hidden_act')
UNIF_EPS = kinds.default('monet-vd', 'unif_eps')
RMS_EPS = kinds.default('lm', 'rms_norm_eps', 'dense')


def router_cfg(mode, **kw):
    c = {'hidden_size': 8, 'moe_experts': 8, 'moe_heads': 2, 'moe_topk': 2, 'mode': mode, **BN}
    c.update(kw)
    return c


def monet_cfg(mode, **kw):
    c = router_cfg(mode, moe_dim=4, hidden_act=MONET_ACT, aux=dict(AUX_MONET), unif_eps=UNIF_EPS)
    c.update(kw)
    return c


def lm_cfg(ffn, **kw):
    c = {'vocab_size': 16, 'hidden_size': 8, 'num_hidden_layers': 3, 'num_attention_heads': 2,
         'num_key_value_heads': 1, 'rms_norm_eps': RMS_EPS, 'rope_theta': 10000.0, 'max_position_embeddings': 16,
         'tie_word_embeddings': False, 'ffn': ffn, 'mode': 'train', '_B': 2, '_S': 6}
    c.update(kw)
    return c


def peer_cfg(mode, activation, **kw):
    c = {'hidden_size': 8, 'num_experts': 16, 'heads': 2, 'top_k': 2, 'key_dim': 4, 'activation': activation,
         'mode': mode, **BN, '_T': 12}
    c.update(kw)
    return c


CASES = [
    # kind, case name, seed, config (with _sizes), options
    ('dense-ffn', 'swiglu', 101, {'hidden_size': 8, 'intermediate_size': 16, 'activation': 'swiglu', '_T': 8}, {}),
    ('dense-ffn', 'relu2_shuffled', 102, {'hidden_size': 8, 'intermediate_size': 12, 'activation': 'relu2', '_T': 6},
     {'order': 'shuffled'}),
    ('dense-ffn', 'gelu', 103, {'hidden_size': 8, 'intermediate_size': 16, 'activation': 'gelu', '_T': 8}, {}),
    ('dense-ffn', 'relu', 104, {'hidden_size': 6, 'intermediate_size': 10, 'activation': 'relu', '_T': 5}, {}),
    ('dense-ffn', 'swiglu_f32', 105, {'hidden_size': 8, 'intermediate_size': 16, 'activation': 'swiglu', '_T': 8},
     {'dtype': 'f32'}),

    ('smoe', 'swiglu_e4k2', 201, {'hidden_size': 8, 'intermediate_size': 8, 'num_experts': 4, 'top_k': 2,
                                  'activation': 'swiglu', 'aux': dict(AUX_SMOE), '_T': 12}, {}),
    ('smoe', 'relu2_e6k3_i64_shuffled', 202, {'hidden_size': 8, 'intermediate_size': 6, 'num_experts': 6, 'top_k': 3,
                                              'activation': 'relu2', 'aux': {'balance': 0.01, 'z': 0.001}, '_T': 10},
     {'idx_dtype': 'I64', 'order': 'shuffled', 'scalar': '1'}),
    ('smoe', 'gelu_e4k1', 203, {'hidden_size': 6, 'intermediate_size': 8, 'num_experts': 4, 'top_k': 1,
                                'activation': 'gelu', 'aux': dict(AUX_SMOE), '_T': 8}, {}),

    ('topk', 'alpha1', 301, {'k': 4, 'alpha': 1.0, 'activation': 'relu', '_T': 6, '_F': 16}, {}),
    ('topk', 'alpha0.4', 302, {'k': 4, 'alpha': 0.4, 'activation': 'relu', '_T': 6, '_F': 16}, {}),
    ('topk', 'alpha0', 303, {'k': 3, 'alpha': 0.0, 'activation': 'relu', '_T': 6, '_F': 12}, {}),

    ('topk-ffn', 'alpha1', 401, {'hidden_size': 8, 'intermediate_size': 16, 'k': 4, 'alpha': 1.0, '_T': 8}, {}),
    ('topk-ffn', 'alpha0.4_f32in', 402, {'hidden_size': 8, 'intermediate_size': 16, 'k': 4, 'alpha': 0.4, '_T': 8},
     {'dtype': 'f32in'}),
    ('topk-ffn', 'alpha0', 403, {'hidden_size': 8, 'intermediate_size': 16, 'k': 5, 'alpha': 0.0, '_T': 8}, {}),

    ('peer', 'train_relu', 501, peer_cfg('train', 'relu'), {}),
    ('peer', 'eval_gelu', 502, peer_cfg('eval', 'gelu'), {}),
    ('peer', 'train_gelu_n64_h3k3', 503, peer_cfg('train', 'gelu', num_experts=64, heads=3, top_k=3, key_dim=6,
                                                  _T=10), {'order': 'scrambled'}),

    ('monet-router', 'train', 601, dict(router_cfg('train'), _T=12), {}),
    ('monet-router', 'eval', 602, dict(router_cfg('eval', moe_heads=3, moe_topk=1), _T=10), {}),

    ('monet-hd', 'train', 701, dict(monet_cfg('train'), _T=12), {'all_experts_used': True}),
    ('monet-hd', 'eval', 702, dict(monet_cfg('eval', moe_experts=4, moe_topk=1), _T=8), {}),
    ('monet-vd', 'train', 801, dict(monet_cfg('train'), _T=12), {'all_experts_used': True}),
    ('monet-vd', 'eval_shuffled', 802, dict(monet_cfg('eval', moe_experts=4, moe_topk=1, moe_heads=3), _T=8),
     {'order': 'shuffled'}),

    ('lm', 'dense_swiglu_gqa', 901, lm_cfg('dense', intermediate_size=12, activation='swiglu', hidden_size=16,
                                           num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2), {}),
    ('lm', 'dense_tied_i64', 902, lm_cfg('dense', intermediate_size=12, activation='gelu', tie_word_embeddings=True,
                                         num_key_value_heads=2, num_hidden_layers=2), {'idx_dtype': 'I64'}),
    ('lm', 'smoe', 903, lm_cfg('smoe', intermediate_size=8, num_experts=4, top_k=2, activation='swiglu',
                               aux=dict(AUX_SMOE)), {}),
    ('lm', 'topk_ffn', 904, lm_cfg('topk', intermediate_size=16, k=4, alpha=0.4, topk_placement='ffn',
                                   n_last_non_topk=1), {}),
    ('lm', 'topk_hidden', 905, lm_cfg('topk', intermediate_size=16, k=4, alpha=0.0, topk_placement='hidden',
                                      n_last_non_topk=2), {}),
    ('lm', 'peer', 906, lm_cfg('peer', peer_layers=[1], num_experts=16, heads=2, top_k=2, key_dim=4,
                               activation='relu', **BN, intermediate_size=12), {}),
    ('lm', 'peer_eval', 907, lm_cfg('peer', mode='eval', peer_layers=[0, 2], num_experts=16, heads=2, top_k=2,
                                    key_dim=4, activation='gelu', **BN, intermediate_size=12), {}),
    ('lm', 'monet_hd', 908, lm_cfg('monet', moe_experts=4, moe_heads=2, moe_topk=1, moe_dim=4, moe_groups=2,
                                   moe_decompose='horizontal', hidden_act=MONET_ACT, aux=dict(AUX_MONET),
                                   unif_eps=UNIF_EPS, **BN), {'all_experts_used': True}),
    ('lm', 'monet_vd', 909, lm_cfg('monet', moe_experts=4, moe_heads=2, moe_topk=1, moe_dim=4, moe_groups=2,
                                   moe_decompose='vertical', hidden_act=MONET_ACT, aux=dict(AUX_MONET),
                                   unif_eps=UNIF_EPS, **BN), {'all_experts_used': True}),
    ('lm', 'monet_vd_eval', 910, lm_cfg('monet', mode='eval', moe_experts=4, moe_heads=2, moe_topk=1, moe_dim=4,
                                        moe_groups=2, moe_decompose='vertical', hidden_act=MONET_ACT,
                                        aux=dict(AUX_MONET), unif_eps=UNIF_EPS, **BN), {}),
]


# ----------------------------------------------------------------------------------------------------------------
# running one case

def f32_round(t):
    return t.to(torch.float32).to(F64)


def build_case(kind, cfg, seed, opts):
    # the config as the layers read it: checked against its kind's schema, defaults filled in (the file's config
    # is the case's own keys: write_case)
    where = f'{kind} case seed {seed}'
    cfg = kinds.effective_config(kind, cfg, where)
    kinds.check_rules(kind, cfg, where)  # the rules between keys, from the schema
    draw, fwd = KINDS[kind]
    D = Draw(seed)
    for attempt in range(1, MAX_DRAWS + 1):
        ins, p, s = draw(D, cfg)
        if opts.get('dtype') in ('f32in', 'f32'):
            ins = {k: (f32_round(v) if v.is_floating_point() else v) for k, v in ins.items()}
            p = {k: f32_round(v) for k, v in p.items()}
            s = {k: f32_round(v) for k, v in s.items()}
        with torch.no_grad():
            res = fwd(cfg, ins, p, s)
        mm = min([m.item() for m in res[3]], default=math.inf)
        # 'all_experts_used': every Monet expert index is selected by some token (per router, head, side), so that
        # L_unif's log(g-bar + unif_eps) sees no g-bar = 0 (the eps-dominated case is covered by the other cases)
        used = all(bool((g.mean(0) > 0).all()) for gg in (res[5] if len(res) > 5 else []) for g in gg)
        if mm >= MIN_MARGIN and (used or not opts.get('all_experts_used')):
            break
    else:
        raise RuntimeError(f'{kind} seed {seed}: no draw with routing margin >= {MIN_MARGIN} in {MAX_DRAWS} tries')
    # forward again with autograd on; gradients of the inputs the layout differentiates (in.x: not the upstream
    # seeds, not token ids) and of every parameter
    S = kinds.shapes(kind, cfg, where)
    leaves = {}
    for k, v in ins.items():
        if 'grad.in.' + k in S:
            leaves['in.' + k] = v.requires_grad_(True)
    for k, v in p.items():
        leaves['param.' + k] = v.requires_grad_(True)
    outs, idx, nxt, margins, L = fwd(cfg, ins, p, s)[:5]
    grads = torch.autograd.grad(L, list(leaves.values()), allow_unused=True)
    grads = {'grad.' + k: (g if g is not None else torch.zeros_like(leaves[k])) for k, g in zip(leaves, grads)}
    return ins, p, s, outs, idx, nxt, grads, mm, attempt


def to_np(t):
    return t.detach().cpu().numpy()


def write_case(out_dir, kind, name, seed, cfg, opts):
    ins, p, s, outs, idx, nxt, grads, mm, attempts = build_case(kind, cfg, seed, opts)
    dt = opts.get('dtype', 'f64')
    real_in = 'F32' if dt in ('f32in', 'f32') else 'F64'
    real_out = 'F32' if dt == 'f32' else 'F64'
    idx_dt = opts.get('idx_dtype', 'I32')
    scalar_1 = opts.get('scalar') == '1'
    T = {}
    for k, v in ins.items():
        T['in.' + k] = (real_in, to_np(v)) if v.is_floating_point() else (idx_dt, to_np(v))
    for k, v in p.items():
        T['param.' + k] = (real_in, to_np(v))
    for k, v in s.items():
        T['state.' + k] = (real_in, to_np(v))
    for k, v in outs.items():
        if v.dim() == 0 and scalar_1:
            v = v.reshape(1)
        T['out.' + k] = (real_out, to_np(v))
    for k, v in grads.items():
        T[k] = (real_out, to_np(v))
    for k, v in idx.items():
        T['idx.' + k] = ('U8', to_np(v).astype('uint8')) if v.dtype == torch.bool else (idx_dt, to_np(v))
    for k, v in nxt.items():
        T['next.' + k] = (real_out, to_np(v))
    order = list(T)
    header_order = None
    if opts.get('order') in ('shuffled', 'scrambled'):
        random.Random(seed).shuffle(order)
    if opts.get('order') == 'scrambled':  # header sorted by name, data blocks shuffled, __metadata__ last
        header_order = sorted(T)
    # names, shapes and dtype classes as the schema's layout declares them for this config
    kinds.check_tensors(kind, kinds.effective_config(kind, cfg, f'{kind}/{name}'),
                        {n: (dt, a.shape) for n, (dt, a) in T.items()}, f'{kind}/{name}')
    config = {k: v for k, v in cfg.items() if not k.startswith('_')}
    meta = {'format': FORMAT, 'kind': kind, 'config': json.dumps(config, separators=(',', ':')),
            'generator': GENERATOR, 'seed': str(seed)}
    if mm != math.inf:
        meta['min_margin'] = repr(mm)
    meta[st.CHECKSUM_KEY] = st.checksum(T, meta)  # last: covers every other entry and every tensor
    path = os.path.join(out_dir, kind, name + '.safetensors')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    st.write(path, T, meta, order, header_order, metadata_last=opts.get('order') == 'scrambled')
    return path, mm, attempts, os.path.getsize(path)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    ap.add_argument('--out', default=os.path.join(here, '..', '..', 'fixtures', 'external', 'pytorch'))
    ap.add_argument('--only', help='KIND or KIND/CASE')
    ap.add_argument('--list', action='store_true')
    a = ap.parse_args(argv)
    torch.set_num_threads(1)  # identical bytes on every run
    torch.use_deterministic_algorithms(True)
    total = 0
    for kind, name, seed, cfg, opts in CASES:
        if a.only and a.only not in (kind, f'{kind}/{name}'):
            continue
        if a.list:
            print(f'{kind}/{name}')
            continue
        path, mm, attempts, size = write_case(os.path.normpath(a.out), kind, name, seed, cfg, opts)
        total += size
        print(f'{os.path.relpath(path)}  {size:7d} B  min_margin {mm:.3g}  draws {attempts}')
    if not a.list:
        print(f'total {total} B')


if __name__ == '__main__':
    main()
