"""Minimal stand-in for `torch`, only so that weightwatcher 0.7.7 can be imported and can run
its numpy state-dict path without a real PyTorch install.

weightwatcher uses torch for: `importlib.import_module('torch')` + `torch.__version__` (banner),
`type(w) == torch.Tensor` checks (numpy arrays are never Tensors here), and
`torch.cuda.is_available()` at import of RMT_Util (False -> it falls back to scipy SVD).
Nothing else is reached on the numpy/dict path with default analyze() options.
"""
__version__ = "0.0.0-stub"


class Tensor:  # never instantiated; only compared against with type(x) == torch.Tensor
    pass


class _Cuda:
    @staticmethod
    def is_available():
        return False


cuda = _Cuda()


class _NN:
    class Module:
        pass

    class Linear:
        pass

    class Conv1d:
        pass

    class Conv2d:
        pass

    class Embedding:
        pass


nn = _NN()


def from_numpy(a):  # only used by weight-replacing utilities (SVDSmoothing etc.), not by analyze()
    return a
