"""pip install of the rts_ros library and its command lines (colcon builds with CMakeLists.txt)."""
import os
from glob import glob

from setuptools import find_packages, setup

setup(
    name="rts_ros",
    version="0.1.0",
    description="RTS (Robust Visual Tracking by Segmentation) as a Python library and a ROS 2 node",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["rts_ros", "rts_ros.*"]),
    package_data={"rts_ros": ["py.typed"]},
    data_files=[
        ("share/rts_ros/weights/default", glob("weights/default/*")),
        ("share/rts_ros/config", [f for f in glob("config/*") if os.path.isfile(f)]),
        ("share/rts_ros/config/eval_sets", glob("config/eval_sets/*.yaml")),
        ("share/rts_ros/launch", glob("launch/*.py")),
    ],
    install_requires=[
        "torch>=2.6",
        "numpy>=1.24",
        "opencv-contrib-python-headless>=4.8",
        "safetensors>=0.4",
        "pyyaml>=6",
        "tqdm>=4.60",
    ],
    extras_require={
        "eval": ["matplotlib>=3.6"],
        "bag": ["rosbags>=0.10"],   # rts-track on recordings (rosbag2 / MCAP / ROS 1 bags), no ROS needed
        "test": ["pytest>=7"],
    },
    entry_points={
        "console_scripts": [
            "rts-convert=rts_ros.cli.convert:main",
            "rts-track=rts_ros.cli.track:main",
            "rts-eval=rts_ros.cli.evaluate:main",
            "rts-train=rts_ros.cli.train:main",
            "rts-synth=rts_ros.cli.synth:main",
            "rts-label-static=rts_ros.cli.label_static:main",
            "rts-average=rts_ros.cli.average:main",
            "rts-eval-sets=rts_ros.cli.eval_sets:main",
            "rts-fit-quality=rts_ros.cli.fit_quality:main",
            "rts_tracker=rts_ros.ros.main:main",
        ]
    },
)
