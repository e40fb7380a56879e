#!/usr/bin/env python3
"""Peer fixtures for the tokenizer and image preprocessing, made with OpenCLIP itself.

Writes, under test/_fixtures/openclip/ (committed; `npm test` compares against them without Python):
  captions.jsonl.gz  one JSON object a line: {"c": category, "t": caption, "ids": OpenCLIP's token ids
                     up to and including the last eot (the rest of the 77 are zeros)}
  images/            the encoded input images (PNG/JPEG) of awkward sizes and colour modes
  images.json        per case: file, resize mode, size, mean/std, OpenCLIP's output as PNG (the PIL image
                     after resize/crop/convert('RGB'), i.e. the bytes ToTensor reads) and the mean and
                     sum of squares of the normalised tensor
Requires: open_clip_torch (3.3.0 used), torch, torchvision, ftfy, pillow, numpy.
Run: python3 benchmarks/reference/openclip_text_image_fixtures.py [--text-only|--images-only]
"""
import gzip
import html.entities
import io
import json
import os
import random
import sys

import numpy as np

# The torchvision wheel on some machines is a CUDA build beside a CPU torch: its C ops fail to
# register. The transforms used here are pure PIL, so registering its fake kernels is skipped.
import torch
import torch.library as _tl
_register_fake = _tl.register_fake
_tl.register_fake = lambda *a, **k: (lambda fn=None: fn)
import torchvision  # noqa: E402
_tl.register_fake = _register_fake
import open_clip  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
OUT = os.path.join(ROOT, 'test', '_fixtures', 'openclip')

WORDS = ('a photo of the cat dog on in with red blue green small large old new two three man woman child '
         'car tree house street beach mountain river city night sunset table chair book phone painting '
         'portrait vintage modern wooden metal glass white black golden bright dark happy running sitting').split()
ACCENTED = ['café', 'naïve', 'façade', 'résumé', 'Zürich', 'São Paulo', 'Ångström', 'crème brûlée', 'jalapeño',
            'Dvořák', 'Łódź', 'Kraków', 'Ærø', 'smörgåsbord', 'piñata', 'Tiếng Việt', 'Ελληνικά', 'Москва', 'İstanbul',
            'straße', 'ΣΊΣΥΦΟΣ', 'naïveté', 'œuvre', 'Þingvellir']
CJK = ['東京の夜景', '北京烤鸭', '서울 거리', 'かわいい猫の写真', '中华人民共和国', '日本語のテキスト', '漢字', 'カタカナ', '한국어 문장',
       '上海 2023 年', '富士山と桜']
EMOJI = ['😀', '🐱', '🐶', '🎉', '❤️', '👍🏽', '👨‍👩‍👧‍👦', '🇫🇷', '🇯🇵', '🏳️‍🌈', '✨', '🔥', '☕', '🌍', '👩🏻‍💻', '1️⃣', '©️', '™']
TAG_FLAGS = ['\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F',  # England
             '\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F',  # Scotland
             '\U0001F3F4\U000E0067\U000E0062\U000E0077\U000E006C\U000E0073\U000E007F']  # Wales
HTML4 = ['amp', 'lt', 'gt', 'quot', 'apos', 'nbsp', 'copy', 'reg', 'trade', 'hellip', 'mdash', 'ndash', 'lsquo',
         'rsquo', 'ldquo', 'rdquo', 'laquo', 'raquo', 'eacute', 'egrave', 'uuml', 'ouml', 'ntilde', 'ccedil',
         'szlig', 'deg', 'frac12', 'frac14', 'times', 'divide', 'euro', 'pound', 'yen', 'cent', 'sect', 'para',
         'middot', 'bull', 'dagger', 'prime', 'alpha', 'beta', 'pi', 'Omega', 'hearts', 'larr', 'rarr', 'infin',
         'ne', 'le', 'ge', 'sup2', 'micro', 'shy', 'zwj', 'zwnj', 'thinsp', 'emsp', 'AElig', 'aring', 'oslash']
CURLY = ['\u2018', '\u2019', '\u201a', '\u201b', '\u201c', '\u201d', '\u201e', '\u201f', '\u02bc', '\u2039', '\u203a',
         '\u00ab', '\u00bb', '\u2032', '\u2033', '\u300c', '\u300d']
LIGATURES = ['ﬁ', 'ﬂ', 'ﬀ', 'ﬃ', 'ﬄ', 'ﬅ', 'ﬆ', 'ĳ', 'Ĳ', 'ǆ', 'ǉ', 'ǌ', 'Ǳ', 'ŉ', 'æ', 'œ']
WHITESPACE = ['\t', '\n', '\r\n', '\r', '\u00a0', '\u2003', '\u2009', '\u3000', '\u200b', '\u2028', '\u0085', '\x0b',
              '\x0c', '\u202f', '\u205f', '\ufeff', '\x1c', '\u1680', '  ', '\u00ad', '\u2060']
CONTROLS = ['\x00', '\x07', '\x1b[31m', '\x1b[0m', '\x7f', '\x81', '\x92', '\x9d', '\u206a', '\ufff9',
            '\U0001d173', '\ufffd', '\x1a']


def words(rng, lo=3, hi=9):
    return ' '.join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def mojibake(rng, s):
    enc = rng.choice(['latin-1', 'cp1252', 'cp1252', 'cp1251', 'mac_roman', 'cp1250', 'cp437', 'cp1253'])
    try:
        out = s.encode('utf-8').decode(enc, errors='strict')
    except UnicodeDecodeError:
        out = s.encode('utf-8').decode('cp1252', errors='replace')
    if rng.random() < 0.15:  # twice
        try:
            out = out.encode('utf-8').decode('cp1252')
        except UnicodeDecodeError:
            pass
    return out


def make_captions(seed=20260417):
    rng = random.Random(seed)
    html5 = sorted(html.entities.html5.keys())
    cases = []
    add = lambda cat, t: cases.append((cat, t))
    for _ in range(800):
        add('plain', words(rng).capitalize() + rng.choice(['', '.', '!', ' 2019', ", it's great", ' (HD)', ' -- 4K']))
    for _ in range(900):
        k = rng.randint(0, 6)
        name = rng.choice(HTML4)
        w = words(rng, 2, 5)
        if k == 0:
            t = f'{w} &{name}; {words(rng, 1, 3)}'
        elif k == 1:
            t = f"it&{rng.choice(['rsquo', 'lsquo', '#8217', '#x2019', 'apos', '#39'])};s {w}"
        elif k == 2:
            t = f'{w} &amp;{name}; {"&amp;" * rng.randint(1, 3)}amp; {w}'
        elif k == 3:
            t = f'{w} &#{rng.randint(32, 0x2fff)}; &#x{rng.randint(32, 0x1ffff):x}; {w}'
        elif k == 4:
            t = f'{w} &{name} {w}'  # no semicolon
        elif k == 5:
            t = f'Tom &amp; Jerry &ldquo;{w}&rdquo; &hellip; &copy;2020'
        else:
            t = f'{w} &{name.upper()}; &{name}x; &#{rng.choice(["0", "128", "150", "x92", "xD800", "1114112", "65"])}; {w}'
        add('entities', t)
    for _ in range(700):
        names = [rng.choice(html5) for _ in range(rng.randint(1, 3))]
        add('html5', words(rng, 2, 5) + ' ' + ' '.join('&' + n + ('' if n.endswith(';') or rng.random() < 0.5 else ';') for n in names) + ' ' + words(rng, 1, 3))
    for _ in range(500):
        q = rng.choice(CURLY)
        q2 = rng.choice(CURLY)
        add('quotes', f"{q}{words(rng, 2, 4)}{q2} it{rng.choice(CURLY[:5])}s {words(rng, 1, 3)}")
    for _ in range(300):
        add('ligatures', f'{words(rng, 1, 3)} {rng.choice(LIGATURES)}{rng.choice(WORDS)} o{rng.choice(LIGATURES)}ce {words(rng, 1, 2)}')
    for _ in range(400):
        w = words(rng, 2, 4)
        k = rng.randint(0, 2)
        if k == 0:
            t = ''.join(chr(ord(c) + 0xfee0) if '!' <= c <= '~' else ('\u3000' if c == ' ' else c) for c in w.upper())
        elif k == 1:
            t = w + ' ' + ''.join(chr(rng.randint(0xff61, 0xff9f)) for _ in range(4)) + ' ￥１２３ ￠￡￦'
        else:
            t = w + ' ' + ''.join(chr(rng.randint(0xffa0, 0xffdc)) for _ in range(3)) + ' ＡＢＣ１２３！'
        add('fullwidth', t)
    for _ in range(500):
        e = ''.join(rng.choice(EMOJI + TAG_FLAGS) for _ in range(rng.randint(1, 3)))
        add('emoji', f'{words(rng, 2, 5)} {e} {words(rng, 0, 2)}')
    for _ in range(200):
        add('emoji_tags', f'{words(rng, 2, 4)} {rng.choice(TAG_FLAGS)} {words(rng, 0, 2)}'
            + (' \U000E0041\U000E0042' if rng.random() < 0.3 else ''))
    for _ in range(800):
        base = f'{rng.choice(ACCENTED)} {words(rng, 1, 3)} {rng.choice(ACCENTED + EMOJI + ["—", "…", "€", "“quoted”", "’"])}'
        add('mojibake', mojibake(rng, base))
    for _ in range(400):
        add('cjk', f'{rng.choice(CJK)} {words(rng, 0, 2)} {rng.choice(CJK)}{rng.choice(["", "。", "！", "、"])}')
    for _ in range(500):
        a = rng.choice(ACCENTED)
        if rng.random() < 0.5:
            import unicodedata
            a = unicodedata.normalize('NFD', a)
        add('accents', f'{words(rng, 1, 3)} {a} {words(rng, 0, 3)}')
    for _ in range(200):
        add('long', ' '.join(words(rng, 8, 12) for _ in range(rng.randint(4, 10))))
    for _ in range(500):
        parts = [words(rng, 1, 2) for _ in range(4)]
        add('whitespace', ''.join(p + ''.join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 3))) for p in parts)
            + rng.choice(['', ' ', '\n', '\t ']))
    for _ in range(300):
        parts = [words(rng, 1, 2) for _ in range(3)]
        add('controls', ''.join(p + rng.choice(CONTROLS) for p in parts))
    for _ in range(300):
        k = rng.randint(0, 2)
        if k == 0:
            t = f'<b>{words(rng, 1, 3)}</b> &amp; {words(rng, 1, 2)} &eacute;'
        elif k == 1:
            t = f'{words(rng, 1, 3)} 3 < 5 &gt; 2 &amp;amp; {words(rng, 1, 2)}'
        else:
            t = f'{words(rng, 1, 2)}\n<i>x</i> &amp; y\nline &rsquo; three &amp;'
        add('html_markup', t)
    for _ in range(150):
        add('special_tokens', f'{words(rng, 1, 3)} {rng.choice(["<start_of_text>", "<end_of_text>", "<|startoftext|>", "<|endoftext|>", "<START_OF_TEXT>"])} {words(rng, 1, 3)}')
    for _ in range(400):
        # random code points from many blocks, including lone surrogates
        blocks = [(0x20, 0x7e), (0xa0, 0x24f), (0x370, 0x52f), (0x590, 0x6ff), (0x900, 0x97f), (0xe00, 0xe7f),
                  (0x1e00, 0x1fff), (0x2000, 0x2bff), (0x3000, 0x30ff), (0x4e00, 0x4fff), (0xac00, 0xad00),
                  (0xd800, 0xdfff), (0xfb00, 0xfb4f), (0xfe00, 0xfe6f), (0xff00, 0xffef), (0x1f300, 0x1faff),
                  (0x1d400, 0x1d7ff), (0xe0000, 0xe007f), (0x80, 0x9f)]
        t = ''.join(chr(rng.randint(*rng.choice(blocks))) for _ in range(rng.randint(3, 20)))
        add('random_unicode', t)
    for _ in range(150):
        add('empty_like', rng.choice(['', ' ', '\n', '&amp;', '&nbsp;', '\u200b', '\u00a0\u00a0', '.', '&', '&;', '&#;', '\ufeff']))
    return cases


def write_text_fixtures():
    tok = open_clip.get_tokenizer('ViT-B-32')
    cases = make_captions()
    ids = tok([t for _, t in cases], context_length=77).numpy()
    path = os.path.join(OUT, 'captions.jsonl.gz')
    with gzip.GzipFile(path, 'wb', mtime=0) as f:
        for (cat, t), row in zip(cases, ids):
            n = int(np.nonzero(row)[0][-1]) + 1  # up to the last eot (a caption may spell one earlier)
            f.write((json.dumps({'c': cat, 't': t, 'ids': row[:n].tolist()}, ensure_ascii=True) + '\n').encode())
    print(f'captions: {len(cases)} -> {path} ({os.path.getsize(path)} bytes)')


# ---------------------------------------------------------------------------------------------
# Images


def smooth_photo(rng, w, h, channels=3):
    """A photo-like image: gradients, a few discs and fine noise (so resampling differences show)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, channels))
    for c in range(channels):
        img[..., c] = 128 + 90 * np.sin(x / max(w, 1) * rng.uniform(2, 9) + c) * np.cos(y / max(h, 1) * rng.uniform(2, 7) - c)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, max(4, min(w, h) / 4))
        col = rng.uniform(0, 255, channels)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = col
    img += rng.normal(0, 12, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def encode(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, format=fmt, **kw)
    return b.getvalue()


def linear_rgb_icc_profile():
    """A minimal ICC v2 display profile: sRGB's primaries with gamma 1.0 (a linear-light RGB, as
    camera and editing profiles differ from sRGB). Pillow ignores embedded profiles; a decoder that
    converts to sRGB by it changes every pixel."""
    import struct

    def s15(v):
        return struct.pack('>i', int(round(v * 65536)))

    def xyz(x, y, z):
        return b'XYZ ' + b'\0' * 4 + s15(x) + s15(y) + s15(z)

    def desc(text):
        t = text.encode('ascii') + b'\0'
        return b'desc' + b'\0' * 4 + struct.pack('>I', len(t)) + t + b'\0' * 4 + b'\0' * 4 + b'\0' * 3 + b'\0' * 67

    curv = b'curv' + b'\0' * 4 + struct.pack('>I', 1) + struct.pack('>H', 0x0100) + b'\0\0'
    tags = [(b'desc', desc('linear sRGB primaries')), (b'cprt', b'text' + b'\0' * 4 + b'no copyright\0'),
            (b'wtpt', xyz(0.9642, 1.0, 0.8249)), (b'rXYZ', xyz(0.4361, 0.2225, 0.0139)),
            (b'gXYZ', xyz(0.3851, 0.7169, 0.0971)), (b'bXYZ', xyz(0.1431, 0.0606, 0.7141)),
            (b'rTRC', curv), (b'gTRC', curv), (b'bTRC', curv)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b'', b''
    for sig, body in tags:
        while (offset + len(data)) % 4:
            data += b'\0'
        table += sig + struct.pack('>II', offset + len(data), len(body))
        data += body
    body = struct.pack('>I', len(tags)) + table + data
    size = 128 + len(body)
    header = (struct.pack('>I', size) + b'none' + bytes([2, 0x10, 0, 0]) + b'mntr' + b'RGB ' + b'XYZ ' + b'\0' * 12
              + b'acsp' + b'\0' * 4 + b'\0' * 4 + b'\0' * 4 + b'\0' * 4 + b'\0' * 8 + b'\0' * 4
              + s15(0.9642) + s15(1.0) + s15(0.8249) + b'\0' * 4 + b'\0' * 16 + b'\0' * 28)
    assert len(header) == 128, len(header)
    return header + body


def make_images(seed=7):
    rng = np.random.default_rng(seed)
    imgs = {}
    imgs['rgb_1x1.png'] = encode(Image.fromarray(np.array([[[200, 30, 90]]], np.uint8)), 'PNG')
    imgs['rgb_7x300.png'] = encode(Image.fromarray(smooth_photo(rng, 7, 300)), 'PNG')
    imgs['rgb_300x7.png'] = encode(Image.fromarray(smooth_photo(rng, 300, 7)), 'PNG')
    a = np.full((100, 100, 3), 20, np.uint8)
    a[40, 75] = 255
    a[10:30, 5:12] = (250, 10, 10)
    imgs['rgb_100x100_dot.png'] = encode(Image.fromarray(a), 'PNG')
    imgs['rgb_640x480.jpg'] = encode(Image.fromarray(smooth_photo(rng, 640, 480)), 'JPEG', quality=90)
    imgs['rgb_333x517.png'] = encode(Image.fromarray(smooth_photo(rng, 333, 517)), 'PNG')
    imgs['rgb_1024x768.jpg'] = encode(Image.fromarray(smooth_photo(rng, 1024, 768)), 'JPEG', quality=85)
    imgs['rgb_225x224.png'] = encode(Image.fromarray(smooth_photo(rng, 225, 224)), 'PNG')
    cmyk = Image.fromarray(smooth_photo(rng, 160, 120, 4), 'CMYK')
    imgs['cmyk_160x120.jpg'] = encode(cmyk, 'JPEG', quality=95)
    rgba = smooth_photo(rng, 150, 110, 4)
    rgba[..., 3] = 255
    rgba[:, :20, 3] = 0
    rgba[:15, :, 3] = 0
    rgba[:, 120:, 3] = np.linspace(0, 255, 30).astype(np.uint8)[None, :]
    rgba[60:80, 60:80, 3] = 128
    imgs['rgba_150x110.png'] = encode(Image.fromarray(rgba, 'RGBA'), 'PNG')
    imgs['l_200x130.png'] = encode(Image.fromarray(smooth_photo(rng, 200, 130, 1)[..., 0], 'L'), 'PNG')
    la = smooth_photo(rng, 90, 70, 2)
    la[:, :10, 1] = 0
    imgs['la_90x70.png'] = encode(Image.fromarray(la, 'LA'), 'PNG')
    imgs['p_120x90.png'] = encode(Image.fromarray(smooth_photo(rng, 120, 90)).quantize(colors=32, dither=Image.Dither.NONE), 'PNG')
    g16 = (smooth_photo(rng, 64, 48, 1)[..., 0].astype(np.uint16) * 257)
    g16[:, :8] = np.arange(8, dtype=np.uint16)[None, :] * 30  # small values survive PIL's clip to 255
    imgs['gray16_64x48.png'] = encode(Image.fromarray(g16, 'I;16'), 'PNG')
    rgb16 = smooth_photo(rng, 80, 60).astype(np.uint16) * 257 + rng.integers(0, 256, (60, 80, 3)).astype(np.uint16)
    import zlib, struct  # PIL cannot write 16-bit RGB PNGs; write one by hand
    raw = b''.join(b'\x00' + rgb16[r].astype('>u2').tobytes() for r in range(60))
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    imgs['rgb16_80x60.png'] = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 80, 60, 16, 2, 0, 0, 0))
                               + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))
    imgs['l_1x1.png'] = encode(Image.fromarray(np.array([[77]], np.uint8), 'L'), 'PNG')
    imgs['rgb_icc_96x64.jpg'] = encode(Image.fromarray(smooth_photo(rng, 96, 64)), 'JPEG', quality=92, icc_profile=linear_rgb_icc_profile())
    return imgs


CASES = [  # (image, resize_mode, size)
    ('rgb_1x1.png', 'shortest', 224), ('rgb_7x300.png', 'shortest', 224), ('rgb_300x7.png', 'shortest', 224),
    ('rgb_100x100_dot.png', 'shortest', 224), ('rgb_640x480.jpg', 'shortest', 224), ('rgb_333x517.png', 'shortest', 224),
    ('rgb_1024x768.jpg', 'shortest', 224), ('rgb_225x224.png', 'shortest', 224), ('cmyk_160x120.jpg', 'shortest', 224),
    ('rgba_150x110.png', 'shortest', 224), ('l_200x130.png', 'shortest', 224), ('la_90x70.png', 'shortest', 224),
    ('p_120x90.png', 'shortest', 224), ('gray16_64x48.png', 'shortest', 224), ('rgb16_80x60.png', 'shortest', 224),
    ('l_1x1.png', 'shortest', 224), ('rgb_640x480.jpg', 'shortest', 64), ('rgb_640x480.jpg', 'longest', 96),
    ('rgb_333x517.png', 'longest', 96), ('rgb_7x300.png', 'longest', 64), ('rgb_640x480.jpg', 'squash', 80),
    ('rgb_7x300.png', 'squash', 64), ('rgba_150x110.png', 'longest', 64), ('rgb_100x100_dot.png', 'shortest', 384),
    ('p_120x90.png', 'squash', 50), ('cmyk_160x120.jpg', 'longest', 72), ('rgb_icc_96x64.jpg', 'shortest', 64),
]
SIGLIP_MEAN = (0.5, 0.5, 0.5)
# Training: torchvision's resized_crop (what RandomResizedCrop applies to its drawn box) with
# OpenCLIP's bicubic interpolation, then convert('RGB'): (image, (top, left, height, width), size).
TRAIN_CASES = [
    ('rgb_640x480.jpg', (17, 40, 450, 520), 224), ('rgb_1024x768.jpg', (0, 100, 768, 700), 128),
    ('rgba_150x110.png', (5, 3, 100, 140), 96), ('cmyk_160x120.jpg', (10, 20, 100, 120), 64),
    ('p_120x90.png', (1, 2, 80, 100), 64), ('rgb_7x300.png', (30, 0, 200, 7), 32),
]


def write_image_fixtures():
    from open_clip.transform import image_transform
    img_dir = os.path.join(OUT, 'images')
    os.makedirs(img_dir, exist_ok=True)
    imgs = make_images()
    for name, data in imgs.items():
        with open(os.path.join(img_dir, name), 'wb') as f:
            f.write(data)
    out = []
    for i, (name, mode, size) in enumerate(CASES):
        mean = SIGLIP_MEAN if i % 5 == 4 else None  # a few cases with another model's mean/std
        std = SIGLIP_MEAN if i % 5 == 4 else None
        t = image_transform(size, is_train=False, mean=mean, std=std, resize_mode=mode)
        im = Image.open(io.BytesIO(imgs[name]))
        x = t(im)
        # The same pipeline without ToTensor + Normalize: the uint8 image ToTensor reads.
        pil = im
        for step in t.transforms[:-2]:
            pil = step(pil)
        arr = np.asarray(pil.convert('RGB'))
        back = t.transforms[-1](t.transforms[-2](pil))
        assert torch.equal(back, x), name
        png = f'out_{i:02d}_{os.path.splitext(name)[0]}_{mode}_{size}.png'
        Image.fromarray(arr).save(os.path.join(img_dir, png), optimize=True)
        out.append({'image': name, 'mode': Image.open(io.BytesIO(imgs[name])).mode, 'resize_mode': mode, 'size': size,
                    'mean': list(t.transforms[-1].mean), 'std': list(t.transforms[-1].std), 'expected_png': png,
                    'tensor_mean': float(x.double().mean()), 'tensor_sumsq': float((x.double() ** 2).sum())})
        print(f'{name:24s} {out[-1]["mode"]:5s} {mode:8s} {size:4d} -> {png}')
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F
    train = []
    for i, (name, (top, left, height, width), size) in enumerate(TRAIN_CASES):
        im = Image.open(io.BytesIO(imgs[name]))
        pil = F.resized_crop(im, top, left, height, width, [size, size], InterpolationMode.BICUBIC).convert('RGB')
        png = f'train_{i:02d}_{os.path.splitext(name)[0]}_{size}.png'
        pil.save(os.path.join(img_dir, png), optimize=True)
        train.append({'image': name, 'top': top, 'left': left, 'height': height, 'width': width, 'size': size, 'expected_png': png})
        print(f'{name:24s} resized_crop {(top, left, height, width)} {size} -> {png}')
    with open(os.path.join(OUT, 'images.json'), 'w') as f:
        json.dump({'open_clip': open_clip.__version__, 'pillow': Image.__version__, 'torchvision': torchvision.__version__,
                   'cases': out, 'train_cases': train}, f, indent=1)


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    if '--images-only' not in sys.argv:
        write_text_fixtures()
    if '--text-only' not in sys.argv:
        write_image_fixtures()
