"""Networks the identity metrics run: built here in the exact layouts of the published weight files.

- :mod:`.vggface`        VGGFace16 in torchvision's ``vgg16`` layout (2622 classes) — d_VGG (paper).
- :mod:`.arcface_resnet` 18-layer ResNetArcFace (IRBlock [2,2,2,2], no SE, 1-channel) — d_ARC (paper).
- :mod:`.mobilefacenet`  MobileFaceNet (TreB1eN/InsightFace_Pytorch keys) — verification (paper).
- :mod:`.iresnet`        IResNet (insightface arcface_torch layout) — used to make test ONNX models.
- :mod:`.align`          MTCNN 5-point landmarks (facenet-pytorch) and ArcFace 112x112 alignment.
- :mod:`.loading`        state-dict loading with clear errors (``module.`` prefixes, wrappers).

Every builder returns a plain ``nn.Module``; loaders put it in eval mode with gradients off.
"""
