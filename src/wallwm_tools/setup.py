from setuptools import find_packages
from setuptools import setup

package_name = 'wallwm_tools'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='wallwm maintainers',
    maintainer_email='maintainers@wallwm.dev',
    description='rosbag2 recorder and player, replay debugger, pip-only launcher for wallwm',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'recorder = wallwm_tools.recorder_node:main',
            'bag_player = wallwm_tools.player_node:main',
            'replay_report = wallwm_tools.replay_report:main',
            'evaluate = wallwm_tools.evaluate:main',
        ],
    },
)
