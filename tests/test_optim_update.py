import torch
from labutils.optim import optimise
def test_update_steps_run_through_the_loop():
    seen = []
    def update(p, step):
        p += 1.0
        return {"total": p.sum(-1), "content": torch.zeros(1), "style": p.sum(-1)}
    out = optimise(torch.zeros(1, 3), None, steps=4, update=update, callback=lambda i, p: seen.append(i.step), every=2, progress=False)
    assert torch.equal(out.param, torch.full((1, 3), 4.0))
    assert [r["total"][0] for r in out.history] == [3.0, 6.0, 9.0, 12.0] and seen == [2, 4]
    stop = {"n": 0}
    out = optimise(torch.zeros(1, 3), None, steps=4, update=update, stop=lambda: len(seen) >= 3, callback=lambda i, p: seen.append(i.step), every=1, progress=False)
    assert out.stopped and out.steps_done == 1
